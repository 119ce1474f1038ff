"""The demo scenario: it feeds the same service calls as real clients."""
