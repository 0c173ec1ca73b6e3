"""Support for resnas's own tests, kept apart from the product (as optuna.testing is).

Nothing here runs unless a test asks for it through the environment.
"""
