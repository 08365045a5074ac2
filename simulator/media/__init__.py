"""Fake devices, synthetic media that carries evidence, analysers and SFU forwarding."""
