"""Tests of trainlab.pinn."""
