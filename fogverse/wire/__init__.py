"""Records that nodes, the master and task clients exchange, in the control envelope.

``nodes`` holds the node kinds and the codec for every kind here; ``tasks`` the
task kinds; ``fields`` the checks their parsers share.
"""
