"""Tasks on node agents: submit work, the master's scheduler picks the device."""
