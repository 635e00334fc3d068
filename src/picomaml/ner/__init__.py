"""picomaml.ner"""
