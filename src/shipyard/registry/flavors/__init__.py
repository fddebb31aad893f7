"""registry/flavors"""
