"""Drill-down stage: from a number to the calls behind it, their flow and their packets.

:mod:`.calls` selects calls and lists them one line each; :mod:`.flow` lays out the messages
of one call as a ladder; :mod:`.extract` writes the original packets of selected calls.
"""
