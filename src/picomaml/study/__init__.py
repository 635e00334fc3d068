"""picomaml.study"""
