"""Where archive bytes come from: a local path or a URL, with Range resumes."""
