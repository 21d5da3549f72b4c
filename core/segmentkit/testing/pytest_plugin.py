"""pytest11 entry point: makes the conformance suite's fixtures available everywhere."""
