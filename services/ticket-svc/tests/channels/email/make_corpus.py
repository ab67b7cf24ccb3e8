"""Regenerate the e-mail corpus: ``.venv/bin/python services/ticket-svc/tests/channels/email/make_corpus.py``.

The messages are written byte by byte the way the named clients write them (header order,
boundaries, transfer encodings, mislabelled charsets, CRLF or LF line ends), not through the
stdlib generator, which would normalise away exactly the quirks the parser has to survive.
Addresses, ids and content are made up.
"""

from __future__ import annotations

import base64
import quopri
from pathlib import Path

CORPUS = Path(__file__).with_name("corpus")

# Small stand-ins for real files: the parser only cares about names, types and bytes.
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
XLSX = b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00" + bytes(range(256)) + b"[Content_Types].xml"
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(64) + b"\xff\xd9"


def b64(data: bytes) -> bytes:
    text = base64.b64encode(data)
    return b"\n".join(text[i:i + 76] for i in range(0, len(text), 76)) + b"\n"


def qp(data: bytes) -> bytes:
    return quopri.encodestring(data.replace(b"\r\n", b"\n"))


def word(text: str, charset: str = "UTF-8", encoding: str = "B") -> str:
    """One RFC 2047 encoded word."""
    data = text.encode(charset)
    if encoding == "B":
        return f"=?{charset}?B?{base64.b64encode(data).decode()}?="
    encoded = "".join(chr(b) if b < 128 and chr(b).isalnum() else ("_" if b == 32 else f"={b:02X}") for b in data)
    return f"=?{charset}?Q?{encoded}?="


def head(*lines: str) -> bytes:
    return "".join(line + "\n" for line in lines).encode("ascii")


def leaf(content_type: str, body: bytes, cte: str = "7bit", *extra: str) -> bytes:
    return head(f"Content-Type: {content_type}", f"Content-Transfer-Encoding: {cte}", *extra) + b"\n" + body


def multipart(boundary: str, *parts: bytes, preamble: bytes = b"") -> bytes:
    out = preamble
    for part in parts:
        out += f"--{boundary}\n".encode() + part
        if not part.endswith(b"\n"):
            out += b"\n"
    return out + f"--{boundary}--\n".encode()


def write(name: str, data: bytes, *, crlf: bool = True) -> None:
    if crlf:
        data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    (CORPUS / name).write_bytes(data)


def gmail_reply() -> None:
    plain = (
        "Thanks, that fixed it. The printer is back online.\n\n"
        "One more question: can I get the driver for macOS too?\n\n"
        "On Fri, Jan 2, 2026 at 10:15\u202fAM Helpdesk Support <support@helpdesk.example>\n"
        "wrote:\n\n"
        "> Hello Alice,\n>\n> please restart the print spooler and try again.\n>\n"
        "> Regards,\n> Helpdesk\n"
    ).encode()
    html = (
        '<div dir="ltr"><div>Thanks, that fixed it. The printer is back online.</div><div><br></div>'
        "<div>One more question: can I get the driver for macOS too?</div></div><br>"
        '<div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Fri, Jan 2, 2026 at 10:15\u202fAM Helpdesk '
        'Support &lt;<a href="mailto:support@helpdesk.example">support@helpdesk.example</a>&gt; wrote:<br></div>'
        '<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex">Hello Alice,<br><br>please restart the '
        "print spooler and try again.<br><br>Regards,<br>Helpdesk</blockquote></div>\n"
    ).encode()
    write("gmail-reply-en.eml", head(
        "MIME-Version: 1.0",
        "Date: Fri, 2 Jan 2026 11:02:41 +0100",
        "References: <ticket-1234-opened@helpdesk.example> <ticket-1234-msg-2@helpdesk.example>",
        "In-Reply-To: <ticket-1234-msg-2@helpdesk.example>",
        "Message-ID: <CAF3x9QnR2bT+5eXq0uJm7Qw_8yZ1=Kp4sLh@mail.gmail.com>",
        "Subject: Re: [#1234] Printer offline on 3rd floor",
        "From: Alice Martin <Alice.Martin@gmail.com>",
        "To: Helpdesk Support <support@helpdesk.example>",
        'Content-Type: multipart/alternative; boundary="000000000000a1b2c3d4e5f60718"',
    ) + b"\n" + multipart(
        "000000000000a1b2c3d4e5f60718",
        leaf('text/plain; charset="UTF-8"', qp(plain), "quoted-printable"),
        leaf('text/html; charset="UTF-8"', qp(html), "quoted-printable"),
    ))


def gmail_reply_zh() -> None:
    plain = (
        "您好，\n\n按照你们的方法重置密码后，仍然无法登录企业邮箱，提示“账号已锁定”。\n麻烦再帮忙看一下，谢谢！\n\n"
        "李娜\n\n"
        "Helpdesk Support <support@helpdesk.example> 于2026年1月2日周五 10:15写道：\n\n"
        "> 您好，请在登录页点击“忘记密码”重置。\n> \n> 客服中心\n"
    ).encode()
    html = (
        '<div dir="ltr">您好，<div><br></div><div>按照你们的方法重置密码后，仍然无法登录企业邮箱，提示“账号已锁定”。</div>'
        "<div>麻烦再帮忙看一下，谢谢！</div><div><br></div><div>李娜</div></div><br>"
        '<div class="gmail_quote"><div dir="ltr" class="gmail_attr">Helpdesk Support &lt;support@helpdesk.example&gt; '
        "于2026年1月2日周五 10:15写道：<br></div><blockquote class=\"gmail_quote\">您好，请在登录页点击“忘记密码”重置。"
        "<br><br>客服中心</blockquote></div>\n"
    ).encode()
    write("gmail-reply-zh.eml", head(
        "MIME-Version: 1.0",
        "Date: Sat, 3 Jan 2026 09:20:11 +0800",
        "References: <ticket-2001-opened@helpdesk.example>",
        "In-Reply-To: <ticket-2001-opened@helpdesk.example>",
        "Message-ID: <CAJk2mW4Uq7rT8nX=pLd0Zf3aH1sQ9yBvE6cR@mail.gmail.com>",
        f"Subject: {word('回复：[#2001] 企业邮箱无法登录')}",
        f"From: {word('李娜')} <lina.work@gmail.com>",
        "To: support@helpdesk.example",
        'Content-Type: multipart/alternative; boundary="0000000000003f9e1c05d2a7b8c1"',
    ) + b"\n" + multipart(
        "0000000000003f9e1c05d2a7b8c1",
        leaf('text/plain; charset="UTF-8"', b64(plain), "base64"),
        leaf('text/html; charset="UTF-8"', b64(html), "base64"),
    ))


def outlook_reply_en() -> None:
    plain = (
        "Hi team,\r\n\r\nThe VPN client still says \u201cauthentication failed\u201d after the password reset. "
        "I\u2019m attaching nothing this time.\r\n\r\nBest regards,\r\nBob Chen\r\nContoso Ltd.\r\n\r\n"
        "________________________________\r\n"
        "From: Helpdesk Support <support@helpdesk.example>\r\n"
        "Sent: Friday, January 2, 2026 4:10 PM\r\n"
        "To: Bob Chen <bob.chen@contoso.com>\r\n"
        "Subject: [#1301] VPN authentication failed\r\n\r\n"
        "Hello Bob, please reset your password at https://id.contoso.com and try again.\r\n"
    ).encode("cp1252")
    html = (
        '<html xmlns:o="urn:schemas-microsoft-com:office:office"><head><meta http-equiv="Content-Type" '
        'content="text/html; charset=windows-1252"><style>p.MsoNormal {margin:0cm; font-size:11.0pt;}</style>'
        '</head><body lang="EN-US"><div class="WordSection1"><p class="MsoNormal">Hi team,<o:p></o:p></p>'
        '<p class="MsoNormal"><o:p>&nbsp;</o:p></p><p class="MsoNormal">The VPN client still says '
        "\u201cauthentication failed\u201d after the password reset. I\u2019m attaching nothing this time."
        '<o:p></o:p></p><p class="MsoNormal"><o:p>&nbsp;</o:p></p><p class="MsoNormal">Best regards,<br>Bob Chen'
        '<br>Contoso Ltd.<o:p></o:p></p><div id="appendonsend"></div><hr style="display:inline-block;width:98%">'
        '<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri" style="font-size:11pt"><b>From:</b> Helpdesk '
        "Support &lt;support@helpdesk.example&gt;<br><b>Sent:</b> Friday, January 2, 2026 4:10 PM<br><b>To:</b> "
        "Bob Chen &lt;bob.chen@contoso.com&gt;<br><b>Subject:</b> [#1301] VPN authentication failed</font>"
        "<div>&nbsp;</div></div><div>Hello Bob, please reset your password at https://id.contoso.com and try "
        "again.</div></div></body></html>"
    ).encode("cp1252")
    write("outlook-reply-en.eml", head(
        "From: Bob Chen <Bob.Chen@Contoso.com>",
        "To: Helpdesk Support <support@helpdesk.example>",
        "CC: IT Ops <itops@contoso.com>",
        "Subject: RE: [#1301] VPN authentication failed",
        "Thread-Topic: [#1301] VPN authentication failed",
        "Thread-Index: AQHcXk3Jm0Vt2YyT9Uu2f3mWq8rJ5w==",
        "Date: Fri, 2 Jan 2026 08:31:07 +0000",
        "Message-ID: <SEYPR06MB54320E1F2A9C3B7D8E4F5A6B7C8D9@SEYPR06MB5432.apcprd06.prod.outlook.com>",
        "References: <ticket-1301-opened@helpdesk.example>",
        "In-Reply-To: <ticket-1301-opened@helpdesk.example>",
        "Accept-Language: en-US, zh-CN",
        "Content-Language: en-US",
        "X-MS-Has-Attach:",
        'Content-Type: multipart/alternative; boundary="_000_SEYPR06MB54320E1F2A9C3B7D8E4FSEYPR06MB5432apcp_"',
        "MIME-Version: 1.0",
    ) + b"\n" + multipart(
        "_000_SEYPR06MB54320E1F2A9C3B7D8E4FSEYPR06MB5432apcp_",
        leaf('text/plain; charset="Windows-1252"', qp(plain), "quoted-printable"),
        leaf('text/html; charset="Windows-1252"', qp(html), "quoted-printable"),
    ))


def outlook_reply_zh() -> None:
    plain = (
        "您好：\r\n\r\n打印机还是显示脱机，已经按照说明重启过了。\r\n\r\n王伟\r\n\r\n"
        "发件人: 客服中心 <support@helpdesk.example>\r\n"
        "发送时间: 2026年1月2日 16:10\r\n"
        "收件人: 王伟 <wangwei@example.cn>\r\n"
        "主题: [#1402] 打印机脱机\r\n\r\n"
        "您好，请先重启打印机后台处理程序。\r\n"
    ).encode("gb2312")
    html = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312"></head><body>'
        '<div class="WordSection1"><p class="MsoNormal"><span lang="ZH-CN">您好：</span><o:p></o:p></p>'
        '<p class="MsoNormal"><o:p>&nbsp;</o:p></p><p class="MsoNormal"><span lang="ZH-CN">打印机还是显示脱机，'
        "已经按照说明重启过了。</span></p><p class=\"MsoNormal\">王伟</p>"
        '<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">'
        '<p class="MsoNormal"><b>发件人:</b> 客服中心 &lt;support@helpdesk.example&gt; <br><b>发送时间:</b> '
        "2026年1月2日 16:10<br><b>收件人:</b> 王伟 &lt;wangwei@example.cn&gt;<br><b>主题:</b> [#1402] 打印机脱机"
        "</p></div><p class=\"MsoNormal\">您好，请先重启打印机后台处理程序。</p></div></body></html>"
    ).encode("gb2312")
    write("outlook-reply-zh.eml", head(
        f"From: {word('王伟', 'gb2312')} <wangwei@example.cn>",
        "To: support@helpdesk.example",
        f"Subject: {word('答复: [#1402] 打印机脱机', 'gb2312')}",
        "Date: Fri, 2 Jan 2026 17:03:55 +0800",
        "Message-ID: <000001dc7b9a$3c1e2f40$b45a8dc0$@example.cn>",
        "In-Reply-To: <ticket-1402-opened@helpdesk.example>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/alternative; boundary="----=_NextPart_000_0001_01DC7BDD.4A4E5F40"',
        "X-Mailer: Microsoft Outlook 16.0",
        "Thread-Index: AQHcXk3Jm0Vt2YyT9Uu2f3mWq8rJ5wAAB4Qw",
        "Content-Language: zh-cn",
    ) + b"\n" + multipart(
        "----=_NextPart_000_0001_01DC7BDD.4A4E5F40",
        leaf('text/plain; charset="gb2312"', b64(plain), "base64"),
        leaf('text/html; charset="gb2312"', b64(html), "base64"),
        preamble=b"This is a multipart message in MIME format.\n\n",
    ))


def outlook_original_message() -> None:
    body = (
        "Hello,\n\nSame problem again today, the shared drive S: is not mapped after login.\n\n"
        "Thanks\nPeter\n\n-----Original Message-----\nFrom: Helpdesk Support [mailto:support@helpdesk.example]\n"
        "Sent: Thursday, January 1, 2026 9:00 AM\nTo: Peter Wu\nSubject: RE: Shared drive missing\n\n"
        "Please log off and on again.\n"
    ).encode("ascii")
    write("outlook-original-message.eml", head(
        "Received: from EXCH01.corp.example.com (10.1.2.3) by EXCH02.corp.example.com (10.1.2.4)",
        " with Microsoft SMTP Server id 15.1.2507.27; Fri, 2 Jan 2026 09:12:44 +0800",
        "From: \"Wu, Peter\" <peter.wu@corp.example.com>",
        "To: \"'Helpdesk Support'\" <support@helpdesk.example>",
        "Subject: RE: Shared drive missing",
        "Date: Fri, 2 Jan 2026 09:12:40 +0800",
        "Message-ID: <003b01dc7b5c$2a1f4e80$7e5deb80$@corp.example.com>",
        "In-Reply-To: <reply-77@helpdesk.example>",
        "References: <open-77@helpdesk.example>\t<reply-77@helpdesk.example>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain;",
        '\tcharset="us-ascii"',
        "Content-Transfer-Encoding: 7bit",
        "X-Mailer: Microsoft Outlook 14.0",
    ) + b"\n" + body)


def outlook_html_only_zh() -> None:
    html = (
        "<html><body><div>各位好，</div><div>&nbsp;</div><div>合同编号 HT-2026-001 的发票抬头需要更改为"
        "“上海某某科技有限公司”。</div><div>&nbsp;</div><div>谢谢&amp;祝好</div><div>&nbsp;</div>"
        "<div>-----原始邮件-----<br>发件人: 客服中心 &lt;support@helpdesk.example&gt;<br>发送时间: 2026年1月2日 "
        "星期五 10:00<br>收件人: finance@example.cn<br>主题: 关于发票</div><div>请提供新的发票抬头。</div>"
        "</body></html>"
    ).encode("utf-8")
    write("outlook-html-only-zh.eml", head(
        f"From: {word('财务部 张敏')} <zhangmin@example.cn>",
        "To: support@helpdesk.example",
        f"Subject: {word('回复：关于发票', 'UTF-8', 'Q')}",
        "Date: Mon, 5 Jan 2026 14:22:09 +0800",
        "Message-ID: <AM0PR10MB2995A1B2C3D4E5F6A7B8C9D0E1F2@AM0PR10MB2995.EURPRD10.PROD.OUTLOOK.COM>",
        "In-Reply-To: <ticket-1500-opened@helpdesk.example>",
        "Content-Type: text/html; charset=\"utf-8\"",
        "Content-Transfer-Encoding: base64",
        "MIME-Version: 1.0",
    ) + b"\n" + b64(html))


def foxmail_reply_gbk() -> None:
    plain = (
        "好的，已经收到新的账号，谢谢！\r\n朱镕基同学\r\n\r\n"
        "------------------ Original ------------------\r\n"
        "From:  \"客服中心\"<support@helpdesk.example>;\r\n"
        "Date:  Fri, Jan 2, 2026 10:00 AM\r\n"
        "To:  \"陈静\"<chenjing@qq.com>;\r\n"
        "Subject:  [#1600] 账号申请\r\n\r\n"
        "您好，新账号已开通，初始密码见短信。\r\n"
    ).encode("gbk")
    html = (
        "<div>好的，已经收到新的账号，谢谢！</div><div>朱镕基同学</div><div><br></div>"
        '<div style="font-size: 12px;font-family: Arial Narrow;padding:2px 0 2px 0;">------------------&nbsp;'
        "Original&nbsp;------------------</div><div style=\"font-size: 12px;background:#efefef;padding:8px;\">"
        "<div><b>From:</b>&nbsp;\"客服中心\"&lt;support@helpdesk.example&gt;;</div><div><b>Date:</b>&nbsp;Fri, Jan 2,"
        " 2026 10:00 AM</div><div><b>To:</b>&nbsp;\"陈静\"&lt;chenjing@qq.com&gt;;</div><div><b>Subject:</b>&nbsp;"
        "[#1600] 账号申请</div></div><div>您好，新账号已开通，初始密码见短信。</div>"
    ).encode("gbk")
    write("foxmail-reply-gbk.eml", head(
        f"From: \"{word('陈静', 'gbk')}\" <chenjing@qq.com>",
        f"To: \"{word('客服中心', 'gbk')}\" <support@helpdesk.example>",
        f"Subject: {word('回复：[#1600] 账号申请', 'gbk')}",
        "Mime-Version: 1.0",
        'Content-Type: multipart/alternative; boundary="----=_NextPart_6957A3B2_0D5C7A80_1F2E3D4C"',
        "Content-Transfer-Encoding: 8Bit",
        "Date: Fri, 2 Jan 2026 10:30:26 +0800",
        "X-Priority: 3",
        "Message-ID: <tencent_3A2B1C0D9E8F7A6B5C4D3E2F1A0B9C8D7E06@qq.com>",
        "X-QQ-MIME: TCMime 1.0 by Tencent",
        "X-Mailer: Foxmail 7.2.25.228[cn]",
        "In-Reply-To: <ticket-1600-opened@helpdesk.example>",
    ) + b"\n" + multipart(
        "----=_NextPart_6957A3B2_0D5C7A80_1F2E3D4C",
        leaf('text/plain; charset="gbk"', b64(plain), "base64"),
        leaf('text/html; charset="gbk"', b64(html), "base64"),
        preamble=b"This is a multi-part message in MIME format.\n\n",
    ))


def qq_mail_reply_gb18030() -> None:
    plain = (
        "收到，周一上午十点可以上门安装。地址：广州市天河区𠀀字路8号\r\n\r\n"
        "------------------&nbsp;原始邮件&nbsp;------------------\r\n"
        "发件人: \"客服中心\"<support@helpdesk.example>;\r\n"
        "发送时间: 2026年1月2日(星期五) 上午10:00\r\n"
        "收件人: \"刘洋\"<liuyang@qq.com>;\r\n"
        "主题: [#1700] 预约安装\r\n\r\n"
        "请问您方便的上门时间？\r\n"
    ).replace("&nbsp;", "\u00a0").encode("gb18030")
    html = (
        "<meta http-equiv=\"Content-Type\" content=\"text/html; charset=GB18030\"><div>收到，周一上午十点可以上门安装。"
        "地址：广州市天河区𠀀字路8号</div><div><br></div><div><br></div><div style=\"font-size: 12px;font-family: "
        "Arial Narrow;padding:2px 0 2px 0;\">------------------&nbsp;原始邮件&nbsp;------------------</div>"
        "<div style=\"font-size: 12px;background:#efefef;padding:8px;\"><div><b>发件人:</b>&nbsp;\"客服中心\""
        "&lt;support@helpdesk.example&gt;;</div><div><b>发送时间:</b>&nbsp;2026年1月2日(星期五) 上午10:00</div>"
        "<div><b>收件人:</b>&nbsp;\"刘洋\"&lt;liuyang@qq.com&gt;;</div><div><b>主题:</b>&nbsp;[#1700] 预约安装</div>"
        "</div><div><br></div>请问您方便的上门时间？"
    ).encode("gb18030")
    write("qq-mail-reply-gb18030.eml", head(
        f"From: \"{word('刘洋', 'gb18030')}\" <liuyang@qq.com>",
        f"To: \"{word('客服中心', 'gb18030')}\" <support@helpdesk.example>",
        f"Subject: {word('回复：[#1700] 预约安装', 'gb18030')}",
        "Mime-Version: 1.0",
        'Content-Type: multipart/alternative; boundary="----=_NextPart_695800A1_0C7B9E58_5E8A1D2F"',
        "Content-Transfer-Encoding: 8Bit",
        "Date: Fri, 2 Jan 2026 11:45:05 +0800",
        "Message-ID: <tencent_9F8E7D6C5B4A39281706F5E4D3C2B1A09F08@qq.com>",
        "X-QQ-MIME: TCMime 1.0 by Tencent",
        "X-Mailer: QQMail 2.x",
        "X-QQ-Mailer: QQMail 2.x",
        "References: <ticket-1700-opened@helpdesk.example>",
    ) + b"\n" + multipart(
        "----=_NextPart_695800A1_0C7B9E58_5E8A1D2F",
        leaf('text/plain; charset="gb18030"', b64(plain), "base64"),
        leaf('text/html; charset="gb18030"', b64(html), "base64"),
        preamble=b"This is a multi-part message in MIME format.\n\n",
    ))


def foxmail_zh_attribution() -> None:
    body = (
        "已经解决了，可以关闭工单。\n\n"
        "在 2026年1月2日 10:15，\"客服中心\"<support@helpdesk.example> 写道：\n\n"
        "> 您好，请尝试清除浏览器缓存。\n"
    ).encode("utf-8")
    write("foxmail-zh-attribution.eml", head(
        "From: \"=?utf-8?B?6LW15Lqu?=\" <zhaoliang@163.com>",
        "To: <support@helpdesk.example>",
        f"Subject: {word('Re: [#1800] 网页打不开')}",
        "Date: Sat, 3 Jan 2026 08:01:00 +0800",
        "Message-ID: <2026010308010012345678@163.com>",
        "In-Reply-To: <ticket-1800-opened@helpdesk.example>",
        "X-Mailer: Foxmail 7.2.25.228[cn]",
        "Mime-Version: 1.0",
        "Content-Type: text/plain; charset=\"utf-8\"",
        "Content-Transfer-Encoding: 8bit",
    ) + b"\n" + body)


def forward_gmail_en() -> None:
    body = (
        "Can you look into this? We were charged twice.\n\n"
        "---------- Forwarded message ---------\n"
        "From: Billing <billing@vendor.example>\n"
        "Date: Thu, Jan 1, 2026 at 6:00 PM\n"
        "Subject: Invoice INV-88231 overdue\n"
        "To: <carol@example.org>\n\n\n"
        "Dear customer,\n\nInvoice INV-88231 for 1,200.00 USD is overdue. Please pay within 7 days.\n\n"
        "Billing team\n"
    ).encode()
    write("forward-gmail-en.eml", head(
        "MIME-Version: 1.0",
        "Date: Fri, 2 Jan 2026 09:00:00 -0500",
        "Message-ID: <CAH7t2Lk8mQpZ9xV3nB1cW6rT0yU5iO4eA2sD@mail.gmail.com>",
        "Subject: Fwd: Invoice INV-88231 overdue",
        "From: Carol White <carol@example.org>",
        "To: support@helpdesk.example",
        'Content-Type: text/plain; charset="UTF-8"',
    ) + b"\n" + body)


def forward_outlook_zh() -> None:
    body = (
        "请帮忙处理一下这个合同审批，谢谢。\r\n\r\n"
        "发件人: 法务部 <legal@example.cn>\r\n"
        "发送时间: 2026年1月2日 9:30\r\n"
        "收件人: 孙丽 <sunli@example.cn>\r\n"
        "主题: 合同审批 HT-2026-017\r\n\r\n"
        "孙丽你好，合同 HT-2026-017 需要在系统里重新提交审批，附件无法打开。\r\n"
    ).encode("gb18030")
    write("forward-outlook-zh.eml", head(
        f"From: {word('孙丽', 'gb2312')} <sunli@example.cn>",
        "To: support@helpdesk.example",
        f"Subject: {word('转发: 合同审批 HT-2026-017', 'gb2312')}",
        "Date: Fri, 2 Jan 2026 10:02:00 +0800",
        "Message-ID: <000c01dc7b63$d3a45b10$7aed1130$@example.cn>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=\"gb2312\"",
        "Content-Transfer-Encoding: 8bit",
        "X-Mailer: Microsoft Outlook 16.0",
    ) + b"\n" + body)


def html_only_en() -> None:
    html = (
        "<!DOCTYPE html><html><head><title>Order</title><style>body{font-family:Arial}</style>"
        "<script>alert('x')</script></head><body><p>Hello&nbsp;support,</p><p>My order #A-7781 arrived damaged "
        "&amp; the box was open.<br>Photos are on the courier&#8217;s site: "
        '<a href="https://track.example.com/A-7781">tracking page</a>.</p><ul><li>Item: coffee grinder</li>'
        "<li>Price: &euro;89.90</li></ul><p>Caf&eacute; owner,<br>Dana</p></body></html>"
    ).encode("utf-8")
    write("html-only-en.eml", head(
        "From: dana@cafe.example",
        "To: support@helpdesk.example",
        "Subject: Damaged delivery",
        "Date: Sun, 4 Jan 2026 19:45:00 +0000",
        "Message-ID: <20260104194500.4f2a@webmail.cafe.example>",
        "MIME-Version: 1.0",
        "Content-Type: text/html; charset=utf-8",
        "Content-Transfer-Encoding: quoted-printable",
    ) + b"\n" + qp(html))


def attachment_pdf() -> None:
    write("attachment-pdf.eml", head(
        "From: Erik Larsen <erik@nordic.example>",
        "To: support@helpdesk.example",
        "Subject: Contract for review",
        "Date: Mon, 5 Jan 2026 08:00:00 +0100",
        "Message-ID: <a8d1f0e2-3b4c-4d5e-9f60-718293a4b5c6@nordic.example>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="------------0a1b2c3d4e5f6a7b8c9d0e1f"',
        "User-Agent: Mozilla Thunderbird",
    ) + b"\n" + multipart(
        "------------0a1b2c3d4e5f6a7b8c9d0e1f",
        leaf("text/plain; charset=UTF-8; format=flowed", b"Please find the signed contract attached.\n\nErik\n"),
        leaf('application/pdf; name="contract-signed.pdf"', b64(PDF), "base64",
             'Content-Disposition: attachment; filename="contract-signed.pdf"'),
        preamble=b"This is a multi-part message in MIME format.\n",
    ))


def attachment_xlsx() -> None:
    xlsx_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    write("attachment-xlsx.eml", head(
        "From: Fatima Khan <fatima.khan@retail.example>",
        "To: support@helpdesk.example",
        "Subject: Stock report does not import",
        "Date: Mon, 5 Jan 2026 10:11:12 +0500",
        "Message-ID: <DM6PR11MB4657C0FFEE1234567890ABCDEF12@DM6PR11MB4657.namprd11.prod.outlook.com>",
        'Content-Type: multipart/mixed; boundary="_004_DM6PR11MB4657C0FFEE_"',
        "MIME-Version: 1.0",
    ) + b"\n" + multipart(
        "_004_DM6PR11MB4657C0FFEE_",
        leaf('multipart/alternative; boundary="_000_DM6PR11MB4657C0FFEE_"', multipart(
            "_000_DM6PR11MB4657C0FFEE_",
            leaf('text/plain; charset="us-ascii"', b"The attached report fails with error E-17 on import.\n"),
            leaf('text/html; charset="us-ascii"', b"<p>The attached report fails with error E-17 on import.</p>\n"),
        )),
        leaf(f'{xlsx_type}; name="stock-2026-01.xlsx"', b64(XLSX), "base64",
             "Content-Description: stock-2026-01.xlsx",
             'Content-Disposition: attachment; filename="stock-2026-01.xlsx"; size=287;',
             '\tcreation-date="Mon, 05 Jan 2026 05:10:00 GMT";',
             '\tmodification-date="Mon, 05 Jan 2026 05:11:00 GMT"'),
    ))


def attachment_rfc2231_zh() -> None:
    write("attachment-rfc2231-zh.eml", head(
        "From: Zhou Jie <zhoujie@example.cn>",
        "To: support@helpdesk.example",
        f"Subject: {word('报价单有误')}",
        "Date: Tue, 6 Jan 2026 09:00:00 +0800",
        "Message-ID: <1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9@example.cn>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="b1_a9f3e2d1c0b9a8f7e6d5c4b3a2"',
        "User-Agent: Mozilla Thunderbird",
    ) + b"\n" + multipart(
        "b1_a9f3e2d1c0b9a8f7e6d5c4b3a2",
        leaf("text/plain; charset=UTF-8", b64("附件报价单第3行单价不对，请核对。\n".encode()), "base64"),
        leaf("application/pdf;\n name*0*=UTF-8''%E6%8A%A5%E4%BB%B7%E5%8D%95%EF%BC%882026%E5%B9%B4;\n"
             " name*1*=1%E6%9C%88%EF%BC%89.pdf", b64(PDF), "base64",
             "Content-Disposition: attachment;",
             " filename*0*=UTF-8''%E6%8A%A5%E4%BB%B7%E5%8D%95%EF%BC%882026%E5%B9%B4;",
             " filename*1*=1%E6%9C%88%EF%BC%89.pdf"),
    ))


def attachment_rfc2047_zh() -> None:
    name = word("发票明细.xlsx", "gb2312")
    xlsx_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    write("attachment-rfc2047-zh.eml", head(
        f"From: {word('吴强', 'gb2312')} <wuqiang@example.cn>",
        "To: support@helpdesk.example",
        f"Subject: {word('发票明细', 'gb2312')}",
        "Date: Tue, 6 Jan 2026 10:00:00 +0800",
        "Message-ID: <202601061000001234567@example.cn>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="----=_001_NextPart123456789012_=----"',
        "X-Mailer: Foxmail 7.2.25.228[cn]",
    ) + b"\n" + multipart(
        "----=_001_NextPart123456789012_=----",
        leaf('text/plain; charset="gb2312"', b64("发票明细见附件。\r\n".encode("gb2312")), "base64"),
        leaf(f'{xlsx_type};\n\tname="{name}"', b64(XLSX), "base64",
             f'Content-Disposition: attachment;\n\tfilename="{name}"'),
        preamble=b"This is a multi-part message in MIME format.\n\n",
    ))


def attachment_raw_8bit_name() -> None:
    body = "截图在附件里，登录时报错 500。\n".encode()
    data = head(
        "From: Tang Min <tangmin@example.cn>",
        "To: support@helpdesk.example",
        "Subject: login error 500",
        "Date: Tue, 6 Jan 2026 11:00:00 +0800",
        "Message-ID: <webmail.3344556677@mail.example.cn>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="=_webmail_0123456789"',
    ) + b"\n" + multipart(
        "=_webmail_0123456789",
        leaf("text/plain; charset=utf-8", body, "8bit"),
        b'Content-Type: image/png; name="\xe6\x88\xaa\xe5\x9b\xbe.png"\nContent-Transfer-Encoding: base64\n'
        b'Content-Disposition: attachment; filename="\xe6\x88\xaa\xe5\x9b\xbe.png"\n\n' + b64(PNG),
    )
    write("attachment-raw-8bit-name.eml", data)


def inline_image_cid() -> None:
    html = (
        '<html><body><p>The error looks like this:</p><p><img width="320" height="200" '
        'src="cid:image001.png@01DC7F2A.5B3C1E40" alt="error"></p><p>Log file attached.</p>'
        "<p>Regards,<br>Hans</p></body></html>"
    ).encode()
    write("inline-image-cid.eml", head(
        "From: Hans Weber <hans.weber@firma.example>",
        "To: support@helpdesk.example",
        "Subject: Error screen in ERP",
        "Date: Wed, 7 Jan 2026 08:30:00 +0100",
        "Message-ID: <FR2P281MB0123ABCDEF0123456789ABCDEF01@FR2P281MB0123.DEUP281.PROD.OUTLOOK.COM>",
        'Content-Type: multipart/mixed; boundary="_005_outer_"',
        "MIME-Version: 1.0",
    ) + b"\n" + multipart(
        "_005_outer_",
        leaf('multipart/related; boundary="_004_related_"; type="multipart/alternative"', multipart(
            "_004_related_",
            leaf('multipart/alternative; boundary="_000_alt_"', multipart(
                "_000_alt_",
                leaf('text/plain; charset="us-ascii"',
                     b"The error looks like this:\n\n[cid:image001.png@01DC7F2A.5B3C1E40]\n\nLog file attached.\n\n"
                     b"Regards,\nHans\n"),
                leaf('text/html; charset="us-ascii"', qp(html), "quoted-printable"),
            )),
            leaf('image/png; name="image001.png"', b64(PNG), "base64",
                 "Content-Description: image001.png",
                 'Content-Disposition: inline; filename="image001.png"; size=70;',
                 "Content-ID: <image001.png@01DC7F2A.5B3C1E40>"),
        )),
        leaf('text/plain; name="erp.log"', b"2026-01-07 08:29:58 ERROR Posting failed: period closed\n", "7bit",
             'Content-Disposition: attachment; filename="erp.log"'),
    ))


def inline_image_no_disposition() -> None:
    html = (
        '<div>Our new logo for the portal, please update it:</div><div><img src="cid:ii_m0k3y2x10"></div>'
        "<div>Thanks, Mei</div>"
    ).encode()
    write("inline-image-no-disposition.eml", head(
        "MIME-Version: 1.0",
        "Date: Wed, 7 Jan 2026 10:00:00 +0800",
        "Message-ID: <CAM9pQ2r7Yt5Vn3Kx1Lw8Zs6Bc4Hd0Jf2Ge@mail.gmail.com>",
        "Subject: Portal logo",
        "From: Mei Lin <meilin@gmail.com>",
        "To: support@helpdesk.example",
        'Content-Type: multipart/related; boundary="000000000000f1e2d3c4b5a69788"',
    ) + b"\n" + multipart(
        "000000000000f1e2d3c4b5a69788",
        leaf('text/html; charset="UTF-8"', html),
        leaf("image/jpeg", b64(JPEG), "base64", "Content-ID: <ii_m0k3y2x10>", "X-Attachment-Id: ii_m0k3y2x10"),
    ))


def body_gbk() -> None:
    body = "您好，\n\n我们公司的网络从昨天下午开始一直断断续续，路由器型号是华为 AR1220。\n\n谢谢\n".encode("gbk")
    write("body-gbk.eml", head(
        f"From: {word('钱程', 'gbk')} <qiancheng@example.cn>",
        "To: support@helpdesk.example",
        f"Subject: {word('网络断断续续', 'gbk')}",
        "Date: Thu, 8 Jan 2026 09:00:00 +0800",
        "Message-ID: <body-gbk-0001@example.cn>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=GBK",
        "Content-Transfer-Encoding: 8bit",
    ) + b"\n" + body)


def body_gb2312_with_gbk_char() -> None:
    body = "请把发票抬头改成“上海镕海贸易有限公司”，啰嗦一句：税号不变。\n".encode("gbk")
    write("body-gb2312-gbk-char.eml", head(
        f"From: {word('冯雪', 'gb2312')} <fengxue@example.cn>",
        "To: support@helpdesk.example",
        f"Subject: {word('修改发票抬头', 'gb2312')}",
        "Date: Thu, 8 Jan 2026 10:00:00 +0800",
        "Message-ID: <body-gb2312-0002@example.cn>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=gb2312",
        "Content-Transfer-Encoding: base64",
    ) + b"\n" + b64(body))


def body_gb18030() -> None:
    body = "姓名里有生僻字“𠀀”，系统保存后变成了问号，请修复。\n".encode("gb18030")
    write("body-gb18030.eml", head(
        f"From: {word('黄𠀀', 'gb18030')} <huang@example.cn>",
        "To: support@helpdesk.example",
        f"Subject: {word('生僻字显示为问号', 'gb18030')}",
        "Date: Thu, 8 Jan 2026 11:00:00 +0800",
        "Message-ID: <body-gb18030-0003@example.cn>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=GB18030",
        "Content-Transfer-Encoding: quoted-printable",
    ) + b"\n" + qp(body))


def body_big5() -> None:
    body = "您好：\r\n\r\n請問發票可以改開統一編號嗎？訂單編號 TW-20260109。\r\n\r\n謝謝\r\n陳美玲\r\n".encode("big5")
    write("body-big5.eml", head(
        f"From: {word('陳美玲', 'big5')} <meiling@example.com.tw>",
        "To: support@helpdesk.example",
        f"Subject: {word('發票統一編號', 'big5')}",
        "Date: Fri, 9 Jan 2026 09:00:00 +0800",
        "Message-ID: <body-big5-0004@example.com.tw>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=\"big5\"",
        "Content-Transfer-Encoding: base64",
    ) + b"\n" + b64(body))


def body_big5_hkscs() -> None:
    body = "部機又壞咗㗎，今日冇辦法打卡，唔該幫手睇下。\n".encode("big5hkscs")
    write("body-big5-hkscs.eml", head(
        "From: Ka Ming Wong <kaming@example.com.hk>",
        "To: support@helpdesk.example",
        f"Subject: {word('打卡機故障', 'big5')}",
        "Date: Fri, 9 Jan 2026 10:00:00 +0800",
        "Message-ID: <body-big5hkscs-0005@example.com.hk>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=big5",
        "Content-Transfer-Encoding: 8bit",
    ) + b"\n" + body)


def body_utf8_qp() -> None:
    body = "您好，APP 里的“我的订单”页面一直转圈，iOS 18.2，版本 5.3.1。\n\n谢谢\n".encode()
    write("body-utf8-qp.eml", head(
        f"From: {word('郑浩', 'UTF-8', 'Q')} <zhenghao@example.cn>",
        "To: support@helpdesk.example",
        f"Subject: {word('APP 订单页面一直转圈', 'UTF-8', 'Q')}",
        "Date: Fri, 9 Jan 2026 11:00:00 +0800",
        "Message-ID: <body-utf8qp-0006@example.cn>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: quoted-printable",
    ) + b"\n" + qp(body))


def body_latin1() -> None:
    body = (
        "Bonjour,\n\nLa facture n\u00b0 F-2026-014 indique 450 \u20ac au lieu de 405 \u20ac. Pourriez-vous "
        "v\u00e9rifier ?\n\nCordialement,\nRen\u00e9e Dubois\n"
    ).encode("cp1252")
    write("body-latin1.eml", head(
        f"From: {word('Renée Dubois', 'ISO-8859-1', 'Q')} <renee.dubois@exemple.fr>",
        "To: support@helpdesk.example",
        f"Subject: {word('Facture erronée', 'ISO-8859-1', 'Q')}",
        "Date: Fri, 9 Jan 2026 12:00:00 +0100",
        "Message-ID: <body-latin1-0007@exemple.fr>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=ISO-8859-1",
        "Content-Transfer-Encoding: quoted-printable",
    ) + b"\n" + qp(body))


def body_no_charset_gbk() -> None:
    body = "显示器不亮了，电源灯是橙色的。\n".encode("gbk")
    write("body-no-charset-gbk.eml", head(
        "From: hr01@example.cn",
        "To: support@helpdesk.example",
        "Subject: monitor",
        "Date: Sat, 10 Jan 2026 09:00:00 +0800",
        "Message-ID: <nocharset-0008@example.cn>",
    ) + b"\n" + body, crlf=False)


def body_utf8_mislabelled_gbk() -> None:
    body = "我们的打印机卡纸了，请派人来看看。\r\n".encode("gbk")
    write("body-utf8-label-gbk-bytes.eml", head(
        "From: office@example.cn",
        "To: support@helpdesk.example",
        f"Subject: {word('打印机卡纸')}",
        "Date: Sat, 10 Jan 2026 10:00:00 +0800",
        "Message-ID: <mislabel-0009@example.cn>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
    ) + b"\n" + body)


def subject_split_words() -> None:
    data = "系统升级后无法导出报表".encode()
    # a client that splits a UTF-8 character across two encoded words
    first, second = base64.b64encode(data[:10]).decode(), base64.b64encode(data[10:]).decode()
    write("subject-split-encoded-words.eml", head(
        "From: Gao Yan <gaoyan@example.cn>",
        "To: support@helpdesk.example",
        f"Subject: =?utf-8?B?{first}?=",
        f" =?utf-8?B?{second}?=",
        "Date: Sat, 10 Jan 2026 11:00:00 +0800",
        "Message-ID: <split-words-0010@example.cn>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: base64",
    ) + b"\n" + b64("导出 Excel 时提示“未知错误”。\n".encode()))


def no_message_id() -> None:
    write("no-message-id.eml", head(
        "From: \"Legacy ERP\" <erp-alerts@legacy.example>",
        "To: support@helpdesk.example",
        "Subject: Disk almost full on erp-db-02",
        "Date: Sun, 11 Jan 2026 03:00:00 +0000",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=us-ascii",
    ) + b"\n" + b"Volume /data is 93% full (threshold 90%).\n")


def ticket_hint_fullwidth() -> None:
    write("ticket-hint-fullwidth.eml", head(
        f"From: {word('何静')} <hejing@example.cn>",
        "To: support@helpdesk.example",
        f"Subject: {word('回复：［#5678］退款进度')}",
        "Date: Sun, 11 Jan 2026 09:00:00 +0800",
        "Message-ID: <fullwidth-0011@example.cn>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
    ) + b"\n" + "请问退款什么时候到账？\n".encode())


def ticket_hint_word_signature() -> None:
    write("ticket-hint-word-signature.eml", head(
        "From: Ivan Petrov <ivan@example.org>",
        "To: support@helpdesk.example",
        "Subject: Re: [Ticket #42] VPN drops every hour",
        "Date: Sun, 11 Jan 2026 10:00:00 +0000",
        "Message-ID: <hint-word-0012@example.org>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=us-ascii; format=flowed",
    ) + b"\n" + (
        b"It dropped again at 09:58 and 10:58, always close to the full hour. \n"
        b"The client log says keepalive timeout.\n\n-- \nIvan Petrov\nNetwork team, Example Org\n+1 555 0100\n"
    ))


def autoreply_auto_submitted() -> None:
    write("autoreply-auto-submitted.eml", head(
        "From: Julia Novak <julia.novak@corp.example>",
        "To: Helpdesk Support <support@helpdesk.example>",
        "Subject: Automatic reply: [#1900] Your ticket has been received",
        "Date: Mon, 12 Jan 2026 08:00:00 +0000",
        "Message-ID: <autoreply-0013@corp.example>",
        "Auto-Submitted: auto-replied",
        "X-MS-Exchange-Inbox-Rules-Loop: julia.novak@corp.example",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=us-ascii",
    ) + b"\n" + b"I am out of the office until 19 January with limited access to e-mail.\n")


def autoreply_x_autoreply() -> None:
    write("autoreply-x-autoreply-163.eml", head(
        f"From: {word('邓超')} <dengchao@163.com>",
        "To: support@helpdesk.example",
        f"Subject: {word('自动回复: 您的工单已受理')}",
        "Date: Mon, 12 Jan 2026 09:00:00 +0800",
        "Message-ID: <autoreply-0014@163.com>",
        "X-Autoreply: yes",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: base64",
    ) + b"\n" + b64("您好，您的邮件我已收到，我会尽快给您回复。\n".encode()))


def autoreply_zh_oof() -> None:
    write("autoreply-zh-oof-outlook.eml", head(
        f"From: {word('彭丽', 'gb2312')} <pengli@example.cn>",
        "To: support@helpdesk.example",
        f"Subject: {word('自动回复: [#2002] 系统维护通知', 'gb2312')}",
        "Date: Mon, 12 Jan 2026 10:00:00 +0800",
        "Message-ID: <oof-0015@example.cn>",
        "X-Auto-Response-Suppress: All",
        "X-MS-Exchange-Organization-AutoResponseSuppress: All",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=gb2312",
        "Content-Transfer-Encoding: base64",
    ) + b"\n" + b64("我正在休假，1月20日返回，紧急事务请联系刘经理。\r\n".encode("gb2312")))


def autoreply_subject_only() -> None:
    write("autoreply-subject-only.eml", head(
        "From: Tom Baker <tom.baker@smallbiz.example>",
        "To: support@helpdesk.example",
        "Subject: Out of Office: Re: [#2100] Password expiry",
        "Date: Mon, 12 Jan 2026 11:00:00 +0000",
        "Message-ID: <oof-0016@smallbiz.example>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=us-ascii",
    ) + b"\n" + b"I am on leave until Monday.\n")


def autoreply_x_autogenerated() -> None:
    write("autoreply-x-autogenerated.eml", head(
        "From: sales@shop.example",
        "To: support@helpdesk.example",
        "Subject: Thank you for your message",
        "Date: Mon, 12 Jan 2026 12:00:00 +0000",
        "Message-ID: <autogen-0017@shop.example>",
        "X-Autogenerated: Reply",
        "X-Autorespond: Thank you for your message",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=us-ascii",
    ) + b"\n" + b"We received your message and will answer within 2 business days.\n")


def bounce_report() -> None:
    write("bounce-dsn-report.eml", head(
        "From: Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@helpdesk.example>",
        "To: <support@helpdesk.example>",
        "Subject: Undeliverable: [#2200] Your request",
        "Date: Tue, 13 Jan 2026 08:00:00 +0000",
        "Message-ID: <bounce-0018@helpdesk.example>",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="_ndr_boundary_"',
        "MIME-Version: 1.0",
        "X-MS-Exchange-Message-Is-Ndr:",
    ) + b"\n" + multipart(
        "_ndr_boundary_",
        leaf("text/plain; charset=us-ascii", b"Delivery has failed to these recipients or groups:\n\n"
             b"nobody@gone.example\nThe e-mail address you entered couldn't be found.\n"),
        leaf("message/delivery-status", b"Reporting-MTA: dns;EX01.helpdesk.example\n\nFinal-recipient: "
             b"RFC822; nobody@gone.example\nAction: failed\nStatus: 5.1.10\n"),
        leaf("message/rfc822", head("From: support@helpdesk.example", "To: nobody@gone.example",
                                    "Subject: [#2200] Your request", "Message-ID: <out-2200@helpdesk.example>")
             + b"\nHello\n"),
    ))


def bounce_mailer_daemon() -> None:
    write("bounce-mailer-daemon.eml", head(
        "From: MAILER-DAEMON@mx1.isp.example",
        "To: support@helpdesk.example",
        "Subject: failure notice",
        "Date: 13 Jan 2026 09:00:00 -0000",
        "Message-ID: <bounce-0019@mx1.isp.example>",
    ) + b"\n" + b"Hi. This is the qmail-send program at mx1.isp.example.\nI'm afraid I wasn't able to deliver "
        b"your message to the following addresses.\n\n<old.user@isp.example>:\nSorry, no mailbox here by that name.\n",
        crlf=False)


def bounce_return_path() -> None:
    write("bounce-null-return-path.eml", head(
        "Return-Path: <>",
        "Received: from relay.partner.example (relay.partner.example [192.0.2.10])",
        "\tby mx.helpdesk.example with ESMTPS id 4f1a2b3c; Tue, 13 Jan 2026 10:00:05 +0000",
        "From: Mail Delivery System <system@relay.partner.example>",
        "To: support@helpdesk.example",
        "Subject: Delivery Status Notification (Delay)",
        "Date: Tue, 13 Jan 2026 10:00:00 +0000",
        "Message-ID: <bounce-0020@relay.partner.example>",
        "Content-Type: text/plain; charset=us-ascii",
    ) + b"\n" + b"Your message to ops@partner.example has not yet been delivered. Retrying for 4 more days.\n")


def list_list_id() -> None:
    write("list-list-id.eml", head(
        "From: \"Dev Announce\" <dev-announce@lists.vendor.example>",
        "To: dev-announce@lists.vendor.example",
        "Subject: [dev-announce] Release 4.2 is out",
        "Date: Wed, 14 Jan 2026 08:00:00 +0000",
        "Message-ID: <list-0021@lists.vendor.example>",
        "List-Id: Developer announcements <dev-announce.lists.vendor.example>",
        "List-Unsubscribe: <mailto:dev-announce-unsubscribe@lists.vendor.example>",
        "List-Post: <mailto:dev-announce@lists.vendor.example>",
        "Precedence: list",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
    ) + b"\n" + b"Release 4.2 ships the new REST API.\n")


def bulk_precedence() -> None:
    write("bulk-precedence.eml", head(
        "From: Vendor News <news@vendor.example>",
        "To: support@helpdesk.example",
        "Subject: January newsletter",
        "Date: Wed, 14 Jan 2026 09:00:00 +0000",
        "Message-ID: <bulk-0022@vendor.example>",
        "Precedence: bulk",
        "MIME-Version: 1.0",
        "Content-Type: text/html; charset=utf-8",
    ) + b"\n" + b"<p>Our January news.</p>\n")


def list_unsubscribe_marketing() -> None:
    write("list-unsubscribe-marketing.eml", head(
        f"From: {word('某某商城')} <promo@mall.example.cn>",
        "To: support@helpdesk.example",
        f"Subject: {word('年货节 满300减50')}",
        "Date: Wed, 14 Jan 2026 10:00:00 +0800",
        "Message-ID: <promo-0023@mall.example.cn>",
        "List-Unsubscribe: <https://mall.example.cn/unsub?u=abc>, <mailto:unsub@mall.example.cn>",
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        "MIME-Version: 1.0",
        "Content-Type: text/html; charset=utf-8",
        "Content-Transfer-Encoding: base64",
    ) + b"\n" + b64("<p>年货节大促，满300减50！</p>".encode()))


def forwarded_bounce_attachment() -> None:
    inner = head(
        "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
        "To: kim@example.org",
        "Subject: Delivery Status Notification (Failure)",
        "Message-ID: <inner-bounce@mx.google.com>",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="inner_b"',
    ) + b"\n" + multipart(
        "inner_b",
        leaf("text/plain; charset=UTF-8", b"Address not found: orders@supplier.example\n"),
        leaf("message/delivery-status", b"Reporting-MTA: dns; googlemail.com\n\nFinal-Recipient: rfc822; "
             b"orders@supplier.example\nAction: failed\nStatus: 5.1.1\n"),
    )
    write("forward-bounce-as-attachment.eml", head(
        "From: Kim Park <kim@example.org>",
        "To: support@helpdesk.example",
        "Subject: Our orders mail bounces, see attached",
        "Date: Thu, 15 Jan 2026 08:00:00 +0900",
        "Message-ID: <fwd-bounce-0024@example.org>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="outer_fwd"',
    ) + b"\n" + multipart(
        "outer_fwd",
        leaf("text/plain; charset=utf-8", b"Every mail to our supplier bounces since Monday. Bounce attached.\n"),
        head("Content-Type: message/rfc822", 'Content-Disposition: attachment; filename="bounce.eml"')
        + b"\n" + inner,
    ))


def smime_signed() -> None:
    write("smime-signed-outlook.eml", head(
        "From: Lars Olsen <lars.olsen@bank.example>",
        "To: support@helpdesk.example",
        "Subject: Token not working",
        "Date: Thu, 15 Jan 2026 09:00:00 +0100",
        "Message-ID: <SIGNED0025@bank.example>",
        'Content-Type: multipart/signed; protocol="application/x-pkcs7-signature"; micalg=SHA256;',
        '\tboundary="----=_NextPart_000_0046_01DC85A4.2D3E4F50"',
        "MIME-Version: 1.0",
    ) + b"\n" + multipart(
        "----=_NextPart_000_0046_01DC85A4.2D3E4F50",
        leaf('text/plain; charset="us-ascii"', b"My hardware token shows 'LOCK' since this morning.\n\nLars\n"),
        leaf('application/x-pkcs7-signature; name="smime.p7s"', b64(bytes(range(200))), "base64",
             'Content-Disposition: attachment; filename="smime.p7s"'),
        preamble=b"This is a multipart message in MIME format.\n\n",
    ))


def apple_mail_flowed() -> None:
    write("apple-mail-flowed.eml", head(
        "From: Nora Lee <nora.lee@icloud.com>",
        "Content-Type: text/plain;",
        "\tcharset=utf-8;",
        "\tdelsp=yes;",
        "\tformat=flowed",
        "Content-Transfer-Encoding: quoted-printable",
        "Mime-Version: 1.0 (Mac OS X Mail 16.0 \\(3826.400.131.1.6\\))",
        "Subject: Re: [#2300] Calendar not syncing",
        "Message-Id: <8E2C1B0A-7D6F-4E5A-9B8C-1A2B3C4D5E6F@icloud.com>",
        "Date: Thu, 15 Jan 2026 18:05:00 -0800",
        "In-Reply-To: <ticket-2300-reply@helpdesk.example>",
        "References: <ticket-2300-opened@helpdesk.example> <ticket-2300-reply@helpdesk.example>",
        "To: Helpdesk Support <support@helpdesk.example>",
        "X-Mailer: Apple Mail (2.3826.400.131.1.6)",
    ) + b"\n" + qp(
        "Removing and re-adding the account fixed the calendar, the shared  \n"
        "calendars show up again.\n\n"
        "Sent from my iPad\n\n"
        "> On Jan 15, 2026, at 17:00, Helpdesk Support <support@helpdesk.example> wrote:\n>\n"
        "> Please remove the account and add it again.\n".encode()
    ))


def thunderbird_interleaved() -> None:
    write("thunderbird-interleaved.eml", head(
        "Message-ID: <5b8f2d1e-6c3a-4e7b-9a0d-2f4e6a8c0b1d@example.net>",
        "Date: Fri, 16 Jan 2026 08:00:00 +0100",
        "MIME-Version: 1.0",
        "User-Agent: Mozilla Thunderbird",
        "Subject: Re: [#2400] A few questions about your setup",
        "To: Helpdesk Support <support@helpdesk.example>",
        "References: <ticket-2400-q@helpdesk.example>",
        "From: Otto Berg <otto@example.net>",
        "In-Reply-To: <ticket-2400-q@helpdesk.example>",
        "Content-Type: text/plain; charset=UTF-8; format=flowed",
        "Content-Transfer-Encoding: 7bit",
    ) + b"\n" + (
        b"Hi,\n\nOn 15.01.26 17:00, Helpdesk Support wrote:\n> Which operating system do you use?\n\nWindows 11 23H2.\n\n"
        b"> Does it happen on wired network too?\n\nNo, only on Wi-Fi.\n\nOtto\n"
    ))


def mbox_lf() -> None:
    write("mbox-from-line-lf.eml", b"From yuki@example.jp  Sat Jan 17 09:00:00 2026\n" + head(
        "Return-Path: <yuki@example.jp>",
        "From: Yuki Tanaka <yuki@example.jp>",
        "To: support@helpdesk.example",
        "Subject: Cannot download invoice",
        "Date: Sat, 17 Jan 2026 09:00:00 +0900",
        "Message-ID: <mbox-0026@example.jp>",
        "Content-Type: text/plain; charset=us-ascii",
    ) + b"\n" + b"The download button on the billing page does nothing in Firefox.\n", crlf=False)


def broken_headers() -> None:
    write("broken-headers.eml", head(
        "From: =?utf-8?B?5by15LiJ?= <ZhangSan@Example.com",
        "To: support@helpdesk.example",
        "Subject: =?utf-8?B?5pWw5o2u5bqT6L+e5o6l6LaF5pe2?=",
        "Date: sometime last tuesday",
        "Message-ID: <broken-0027@example.com>",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: base64",
    ) + b"\n" + base64.b64encode("数据库连接超时，错误码 ORA-12170。".encode()).rstrip(b"=") + b"\n")


def html_only_gmail_quote() -> None:
    html = (
        '<div dir="ltr">Yes, please go ahead and replace the laptop battery.</div><br><div class="gmail_quote">'
        '<div dir="ltr" class="gmail_attr">On Fri, Jan 16, 2026 at 9:00 AM Helpdesk Support &lt;'
        'support@helpdesk.example&gt; wrote:<br></div><blockquote class="gmail_quote" style="margin:0px 0px 0px '
        '0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex"><div>Should we replace the battery under '
        "warranty?</div></blockquote></div>"
    ).encode()
    write("html-only-gmail-quote.eml", head(
        "MIME-Version: 1.0",
        "Date: Sat, 17 Jan 2026 10:00:00 +0000",
        "Message-ID: <CAB1x2Y3z4W5v6U7t8S9r0Q=p1O2n3M4l5K6j@mail.gmail.com>",
        "In-Reply-To: <ticket-2500-q@helpdesk.example>",
        "Subject: Re: [#2500] Laptop battery",
        "From: Sam Jones <sam.jones@gmail.com>",
        "To: support@helpdesk.example",
        'Content-Type: text/html; charset="UTF-8"',
        "Content-Transfer-Encoding: quoted-printable",
    ) + b"\n" + qp(html))


def new_ticket_plain_cc_reply_to() -> None:
    write("new-ticket-reply-to-cc.eml", head(
        "From: \"Printer Room 3F\" <scanner@office.example>",
        "Reply-To: Facilities Team <facilities@office.example>",
        "To: support@helpdesk.example",
        "Cc: Anna Berg <anna.berg@office.example>, \"Li, Wei\" <wei.li@office.example>",
        "Subject: Paper tray 2 jammed",
        "Date: Sat, 17 Jan 2026 11:00:00 +0100",
        "Message-ID: <scan-0029@office.example>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=us-ascii",
    ) + b"\n" + b"Tray 2 reports a paper jam but is empty.\n")


def auto_submitted_no() -> None:
    write("auto-submitted-no.eml", head(
        "From: Ravi Kumar <ravi@example.in>",
        "To: support@helpdesk.example",
        "Subject: Need access to the finance share",
        "Date: Sun, 18 Jan 2026 09:00:00 +0530",
        "Message-ID: <human-0030@example.in>",
        "Auto-Submitted: no",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=us-ascii",
    ) + b"\n" + b"Please grant me read access to \\\\fs01\\finance.\n")


def main() -> None:
    CORPUS.mkdir(exist_ok=True)
    for make in (
        gmail_reply, gmail_reply_zh, outlook_reply_en, outlook_reply_zh, outlook_original_message,
        outlook_html_only_zh, foxmail_reply_gbk, qq_mail_reply_gb18030, foxmail_zh_attribution, forward_gmail_en,
        forward_outlook_zh, html_only_en, attachment_pdf, attachment_xlsx, attachment_rfc2231_zh,
        attachment_rfc2047_zh, attachment_raw_8bit_name, inline_image_cid, inline_image_no_disposition, body_gbk,
        body_gb2312_with_gbk_char, body_gb18030, body_big5, body_big5_hkscs, body_utf8_qp, body_latin1,
        body_no_charset_gbk, body_utf8_mislabelled_gbk, subject_split_words, no_message_id, ticket_hint_fullwidth,
        ticket_hint_word_signature, autoreply_auto_submitted, autoreply_x_autoreply, autoreply_zh_oof,
        autoreply_subject_only, autoreply_x_autogenerated, bounce_report, bounce_mailer_daemon, bounce_return_path,
        list_list_id, bulk_precedence, list_unsubscribe_marketing, forwarded_bounce_attachment, smime_signed,
        apple_mail_flowed, thunderbird_interleaved, mbox_lf, broken_headers, html_only_gmail_quote,
        new_ticket_plain_cc_reply_to, auto_submitted_no,
    ):
        make()


if __name__ == "__main__":
    main()
