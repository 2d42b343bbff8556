"""HL7 v2 over MLLP: the hospital's registration, lab and pharmacy systems write through it.

``contract`` is the seam between the listener (framing, ACKs, duplicates, ordering, the
rejected messages) and the translation of each message type into the typed commands of
``events.commands``: the same write API as the REST routes, never a second write path.
"""
