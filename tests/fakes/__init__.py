"""Stand-ins for hardware: the only things the test suite fakes (brief: adapters)."""
