"""The conformance suite: a pytest plugin (:mod:`conformance.plugin`) and its checks, by section."""
