"""Tests of the Datasphere REST source against a fake tenant."""
