"""The journal: what the agent did and must be able to undo, kept on the agent's machine.

journal (cases, changes with their undo data, events: the Journal and its rows), database
(the SQLite file: opened safely, its tables and their migrations, one connection shared by
a run's threads), audit (every event to the structured log and the events table).
"""
