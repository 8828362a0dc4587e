"""Tabcast's benchmark: fan-out, latency, connect rate, memory and publish rate against baselines."""
