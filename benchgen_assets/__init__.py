"""Benchmark scenario generator: build123d scripts → STL + MuJoCo MJCF, strictly validated."""
