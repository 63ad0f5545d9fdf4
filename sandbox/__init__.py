"""Simulators of the external systems, each speaking that system's own protocol on loopback."""
