"""picomaml.pretrain"""
