"""Virtual participants and what they do (the demo today; scenarios and the runner later)."""
