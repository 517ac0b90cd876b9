"""xAPI 1.0.3: the event log as statements for the training unit's Learning Record Store.

See docs/XAPI.md for the whole mapping and the reason for each choice.
"""
