"""Talking to a board: the framed serial link, virtual boards (the unix port on a
pty) and deployment with mpremote. Knows nothing of GBCS beyond frame types."""
