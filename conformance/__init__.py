"""The conformance suite (a pytest plugin; its checks arrive with the conformance issue)."""
