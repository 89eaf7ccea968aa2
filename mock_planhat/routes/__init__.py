"""Blueprints, thin: parse, authenticate, call the store and matching, render."""
