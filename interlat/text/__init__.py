"""Text -> ids, shared by every stage: prompts, chat templates, the tokenizer, batching."""
