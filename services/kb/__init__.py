"""Policy questions: documents, analysers, BM25 index, answers, question log and handoffs.

Plain Python without telegram imports; handlers/ask.py is the Telegram side. Modules:
documents (Markdown with front matter, sections), analysis (jieba, Snowball, concepts,
typos), index (bm25s over topics, confidence), answering (what to do with a question),
render (answers as Telegram HTML), store and library (versions in the database and the
shipped documents), questions (the log, feedback, stats), handoffs (a person behind the
bot, reminders), evaluation (recall, MRR, calibration).
"""
