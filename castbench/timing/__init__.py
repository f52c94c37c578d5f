"""The timing engine: warm-up, timed steps, probes, sweeps and plots."""
