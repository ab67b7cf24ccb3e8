"""Reading a customer's message as an answer to "is your problem resolved?" (pure).

While a ticket waits on a customer-confirmation step, whatever the customer writes on it is an
answer: a confirmation closes the ticket, anything else reopens it (the step's ``reply``). A
wrong "confirm" closes a ticket whose customer still needs help, a wrong "reply" only reopens
one an agent then solves again; so the reading is deliberately narrow:

- only the first line that says something counts: lines quoting earlier mail (``>``) and a
  bare greeting ("Hi team,", "您好") are passed over (the e-mail parser has already cut the
  quoted history and the signature, ``channels/email/quotes.py``);
- a question, a negation or a "but" anywhere in that line is never a confirmation ("not
  resolved", "still broken", "yes but…", "还没解决", "不行", "好了吗？"), after lifting the
  idioms that only look negative ("no problem", "没问题", "不客气", "不错");
- the line must contain a confirming phrase ("yes", "confirmed", "it works", "确认", "已解决",
  "好了", …) and either say nothing else but courtesy ("thanks", "谢谢") and punctuation, or
  *open* with the confirming phrase and go on without a hedge, a request or a "later" ("确认，
  已经收到退款了" confirms; "yes please call me", "ok I will try later", "好的，我试试", "yes, and
  one more thing" do not). "Thanks" alone is not a confirmation.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

Reading = Literal["confirm", "reply"]

#: a first line longer than this is a message, not an answer
MAX_ANSWER_CHARS = 200

_CONFIRM_EN = (
    "yes", "yep", "yeah", "yup", "ok", "okay", "k", "sure", "correct", "confirm", "confirmed", "i confirm",
    "resolved", "solved", "fixed", "sorted", "done", "all good", "all set", "good now", "fine now",
    "it works", "works", "working", "it is working", "it's working", "works now", "works fine", "works great",
    "that worked", "that works", "it worked", "problem solved", "issue resolved", "perfect", "great", "excellent",
    "you can close", "please close", "close it", "close the ticket", "no problem", "no problems", "no worries",
    "looks good", "all fine", "everything is fine", "everything's fine",
)
_CONFIRM_ZH = (
    "确认", "已确认", "确认了", "确定", "是的", "是", "对", "对的", "嗯", "嗯嗯", "好", "好的", "好了", "可以", "可以了",
    "行", "行了", "已解决", "解决了", "已经解决", "已经解决了", "已经好了", "问题解决了", "搞定", "搞定了", "修好了",
    "好用了", "能用了", "可以用了", "正常了", "恢复了", "恢复正常", "恢复正常了", "没问题", "没问题了", "没事了", "满意",
    "可以关闭", "可以关闭了", "请关闭", "关闭吧", "关了吧", "结单", "可以结单", "完美", "已修复",
)
_CONFIRM_SYMBOLS = ("👍", "👌", "✅", "🙏")
_COURTESY_EN = (
    "thanks", "thank you", "thank u", "thx", "ty", "many thanks", "cheers", "a lot", "so much", "very much",
    "again", "for your help", "for the help", "for helping", "now", "it", "it's", "its", "is", "has been", "was",
    "the", "issue", "problem", "ticket", "everything", "all", "this", "that", "indeed", "really", "totally",
    "fully", "i", "we", "can", "you", "please", "and", "great", "good", "fine", "as well", "too", "just",
    "team", "guys", "oh", "ah", "wow", "hi", "hello", "hey", "dear", "support",
)
_COURTESY_ZH = (
    "谢谢", "谢谢你", "谢谢您", "谢谢你们", "感谢", "多谢", "谢了", "非常", "十分", "太", "真", "您", "你", "你们", "了",
    "的", "啊", "呀", "吧", "哈", "哈哈", "哦", "噢", "喔", "已经", "现在", "都", "一切", "问题", "工单", "辛苦了",
    "辛苦", "大家", "老师", "您好", "你好",
)
#: idioms with a negative word in them that say "fine"; lifted before the negation check
_IDIOMS = ("no problem", "no problems", "no worries", "没问题", "没事", "不客气", "不错", "不用谢", "没关系")
_NEGATIONS_EN = (
    "not", "no", "nope", "never", "nothing", "still", "yet", "but", "however", "though", "although", "unresolved",
    "unsolved", "broken", "broke", "fail", "fails", "failed", "failing", "error", "errors", "wrong", "issue persists",
    "doesn't", "isn't", "didn't", "won't", "can't", "cannot", "haven't", "hasn't", "aren't", "wasn't", "don't",
    "reopen", "again?",
)
#: negation and doubt in Chinese: no word boundaries, so any occurrence counts
_NEGATIONS_ZH = ("没", "不", "未", "别", "仍", "还是", "还有", "依然", "依旧", "仍然", "无法", "失败", "错误", "但",
                 "可是", "不过", "重新", "再次", "吗", "么")
#: after the confirming phrases are lifted, any of these left makes the line more than an answer
_HEDGES_EN = (
    "and", "also", "another", "one more", "more", "question", "questions", "please", "could", "would", "can you",
    "when", "how", "why", "what", "where", "call", "contact", "try", "trying", "later", "will", "i'll", "we'll",
    "check", "test", "see", "let you know", "tomorrow", "wait", "waiting", "need", "want", "if", "maybe", "partly",
    "partially", "mostly", "almost",
)
_HEDGES_ZH = ("还", "另外", "顺便", "再", "请", "帮", "怎么", "什么", "为什么", "何时", "呢", "试试", "试一下", "稍后",
              "晚点", "明天", "看看", "等", "需要", "想", "如果", "也许", "可能", "部分", "基本", "差不多")
_QUESTION = re.compile(r"[?？]")
#: a line that only greets: a bare greeting, or one with a name before a comma ("Dear Li Wei,")
_GREETING = re.compile(r"^(?:(?:hi|hello|hey|dear)\b[^,，!！.。:：?？]{0,40}[,，:：]|(?:hi|hello|hey)(?: there| team)?"
                       r"|good (?:morning|afternoon|evening)|您好|你好|[\u4e00-\u9fff]{1,4}(?:您好|你好))[\s,，!！.。:：]*$")


def _en(words: tuple[str, ...]) -> list[str]:
    return [rf"(?<![a-z']){re.escape(w)}(?![a-z'])" for w in sorted(words, key=len, reverse=True)]


def _zh(words: tuple[str, ...]) -> list[str]:
    return [re.escape(w) for w in sorted(words, key=len, reverse=True)]


def _alternation(parts: list[str]) -> re.Pattern[str]:
    return re.compile("|".join(parts))


_CONFIRM = _alternation(sorted(_en(_CONFIRM_EN) + _zh(_CONFIRM_ZH) + _zh(_CONFIRM_SYMBOLS), key=len, reverse=True))
_COURTESY = _alternation(sorted(_en(_COURTESY_EN) + _zh(_COURTESY_ZH), key=len, reverse=True))
_IDIOM = _alternation(sorted(_en(tuple(i for i in _IDIOMS if i.isascii())) + _zh(tuple(i for i in _IDIOMS if not i.isascii())),
                             key=len, reverse=True))
_NEGATION = _alternation(_en(_NEGATIONS_EN) + [r"n't(?![a-z])"] + _zh(_NEGATIONS_ZH))
_HEDGE = _alternation(_en(_HEDGES_EN) + _zh(_HEDGES_ZH))


def normalise(text: str) -> str:
    """Full-width to half-width, case folded, curly apostrophes straight, spaces collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold().replace("\u2019", "'").replace("\u2018", "'")
    return " ".join(text.split())


def answer_line(text: str) -> str | None:
    """The first line that says something: not blank, not a quote (``>``), not a bare greeting."""
    for raw in text.splitlines():
        line = normalise(raw)
        if not line or line.startswith(">") or (_GREETING.match(line) and not _NEGATION.search(line)):
            continue
        return line
    return None


def _only_noise(text: str) -> bool:
    """Nothing left but punctuation, symbols and spaces."""
    return all(unicodedata.category(ch)[0] in "PSZC" for ch in text)


def read(text: str) -> Reading:
    """``confirm`` when the message's answer line is a plain confirmation, else ``reply``."""
    line = answer_line(text)
    if line is None or len(line) > MAX_ANSWER_CHARS or _QUESTION.search(line):
        return "reply"
    if _NEGATION.search(_IDIOM.sub(" ", line)):
        return "reply"
    if not _CONFIRM.search(line):
        return "reply"
    lifted = _CONFIRM.sub(" ", _IDIOM.sub(" ", line))
    if _HEDGE.search(lifted):
        return "reply"
    if _only_noise(_COURTESY.sub(" ", lifted)):
        return "confirm"
    return "confirm" if _opens_with_confirmation(line) else "reply"


def _opens_with_confirmation(line: str) -> bool:
    """The line starts (after courtesy and punctuation) with a confirming phrase."""
    position = 0
    while position < len(line):
        if _only_noise(line[position]):
            position += 1
            continue
        if _CONFIRM.match(line, position):
            return True
        courtesy = _COURTESY.match(line, position)
        if courtesy is None or courtesy.end() == position:
            return False
        position = courtesy.end()
    return False
