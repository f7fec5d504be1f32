//! LLM expert: wraps an OpenAI-compatible chat-completions endpoint as an expert with schema-checked JSON output.
