"""The three classes a ktrdr network predicts, by id: BUY 0, HOLD 1, SELL 2.

Labels (step 5), the saved manifest's class map, the pictures and prediction all use these ids.
"""

CLASS_NAMES = ("BUY", "HOLD", "SELL")
