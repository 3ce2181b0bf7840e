"""Agentic teacher: robot episodes → BehaviorTree.CPP v4 trees over PAL v1 primitives."""
