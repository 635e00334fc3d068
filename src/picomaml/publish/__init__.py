"""Publishing: a backbone or NER run as a Hugging Face Hub repository with a model card."""
