"""data/math"""
