"""picomaml.data"""
