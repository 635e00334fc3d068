"""picomaml.model"""
