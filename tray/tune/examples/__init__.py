"""Example trainables and data for Tune (Ray's ``ray.tune.examples``)."""
