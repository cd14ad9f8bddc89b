"""data/alfworld"""
