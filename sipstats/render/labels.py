"""Every heading, column name and fixed phrase of the reports, in English and Chinese.

Renderers never spell a visible word themselves: they ask :func:`label` so that ``--lang zh``
changes every label at once and a test can check that both languages cover the same keys.
"""

from __future__ import annotations

from typing import Final, Literal

Lang = Literal["en", "zh"]
LANGS: Final[tuple[Lang, ...]] = ("en", "zh")

#: key -> (English, Chinese)
LABELS: Final[dict[str, tuple[str, str]]] = {
    # document
    "title": ("SIP capture report", "SIP 抓包分析报告"),
    "generated_from": ("Captures", "抓包文件"),
    "capture_window": ("Capture window (UTC)", "抓包时间范围 (UTC)"),
    "filters": ("Filters", "过滤条件"),
    "selection": ("What was counted", "统计范围"),
    "no_filters": ("none: every SIP message", "无：全部 SIP 消息"),
    "selected_window": ("Window analysed (UTC)", "分析的时间范围 (UTC)"),
    "selected_of": ("{kept} of {before} SIP messages kept", "保留 {kept} / {before} 条 SIP 消息"),
    "matched_nothing": (
        "the filters matched no SIP message",
        "过滤条件没有匹配任何 SIP 消息",
    ),
    "none": ("none", "无"),
    "no_data": ("Nothing to show for this capture.", "此抓包中没有相关数据。"),
    "meaning": ("Meaning", "含义"),
    # sections
    "findings": ("Findings", "发现"),
    "summary": ("Summary", "概要"),
    "by_method": ("Requests by method", "按方法统计的请求"),
    "by_code": ("Responses by code", "按状态码统计的响应"),
    "by_class": ("Response classes", "响应类别"),
    "by_category": ("Response categories", "响应类型"),
    "timeline": ("Responses over time", "响应时间分布"),
    "outcomes": ("Call outcomes", "呼叫结果"),
    "every_leg": ("(every leg)", "（每段都计）"),
    "callers_leg": ("(caller's leg)", "（主叫侧）"),
    "flows": ("Call flows", "呼叫流程"),
    "flows_note": (
        "The first call of each failure outcome and the call with the longest post-dial delay; "
        "hover an arrow for its frame, dashed arrows are retransmissions. "
        "'sipstats flow CAPTURE --call-id ID' draws any call.",
        "每种失败结果的第一个呼叫，以及拨号后延迟最长的呼叫；悬停箭头可见帧号，虚线为重传。"
        "'sipstats flow CAPTURE --call-id ID' 可绘制任意呼叫。",
    ),
    "slowest_pdd": ("Longest post-dial delay", "拨号后延迟最长"),
    "delays": ("Setup and registration delays", "呼叫建立与注册延迟"),
    "retry_after": (
        "Retry-After per target: did the same caller retry the same callee?",
        "按目标统计的 Retry-After：同一主叫是否重试同一被叫？",
    ),
    "early_retriers": ("Callers that retried too early", "过早重试的主叫"),
    "storms": ("Retry storms", "重试风暴"),
    "by_peer": ("Top failing peer pairs", "失败最多的对端组合"),
    "failures_by_responder": ("Failures per responder", "按响应方统计的失败"),
    "failures_by_requester": ("Failures per requester", "按请求方统计的失败"),
    "failures_by_caller": ("Callers failing most", "失败最多的主叫"),
    "failures_by_callee": ("Callees failing most", "失败最多的被叫"),
    "failure_timeline": ("Final responses over time", "最终响应时间线"),
    "nav_retry_after": ("Retry-After", "Retry-After"),
    "nav_by_peer": ("Who failed", "失败方"),
    "registrations": ("Registrations", "注册"),
    "software": ("User agents and servers", "用户代理与服务器软件"),
    "code_by_cause": ("Final code and Q.850 cause", "最终状态码与 Q.850 原因"),
    "code_by_cause_note": (
        "'!' marks a cause that contradicts the code: RFC 3398 §7.2.4.1 maps it to another class,"
        " or 'normal call clearing' (16) ended a failed call.",
        "'!' 表示原因与状态码矛盾：RFC 3398 §7.2.4.1 将其映射到另一类别，"
        "或以“正常呼叫清除”(16)结束的失败呼叫。",
    ),
    "agents_by_outcome": ("Calls by software and outcome", "按软件与结果统计的呼叫"),
    "by_responder": ("Final responses to INVITE per responder", "各应答方对 INVITE 的最终响应"),
    "invites": ("INVITEs", "INVITE 数"),
    "answered_share": ("Answered", "接通比例"),
    "cause": ("Q.850 cause", "Q.850 原因"),
    "cause_text": ("Cause text", "原因文本"),
    "rfc3398_code": ("RFC 3398 code", "RFC 3398 状态码"),
    "side": ("Side", "方向"),
    "software_name": ("Software", "软件"),
    "side_caller": ("caller", "主叫"),
    "side_responder": ("responder", "应答方"),
    "reg_sequences": ("Registration final responses in order", "注册最终响应顺序"),
    "server_retries": (
        "Retry-After per server: did the client host keep away from a server after its 503?",
        "按服务器统计的 Retry-After：客户端主机在 503 之后是否避开该服务器？",
    ),
    "metrics": ("Metrics", "指标"),
    "failures_by_method": ("Response classes by request method", "按请求方法统计的响应类别"),
    "retry_by_value": ("Retries per Retry-After value", "按 Retry-After 取值统计的重试"),
    "retry_gaps": ("Time to the retry", "重试间隔"),
    "inputs": ("Input files and problems", "输入文件与问题"),
    # summary rows / cards
    "files": ("Files", "文件数"),
    "packets": ("Packets", "数据包"),
    "sip_messages": ("SIP messages", "SIP 消息"),
    "requests": ("Requests", "请求"),
    "responses": ("Responses", "响应"),
    "retransmissions": ("Retransmissions", "重传"),
    "retransmission_ratio": ("Retransmission ratio", "重传比例"),
    "malformed": ("Malformed", "格式错误"),
    "transactions": ("Transactions", "事务"),
    "transactions_without_final": ("Transactions without final response", "无最终响应的事务"),
    "calls": ("Calls", "呼叫"),
    "answer_ratio": ("Answer ratio (ASR)", "应答率 (ASR)"),
    "ratio_of": ("{value} of {n}", "{value}（共 {n}）"),
    "card_answered": ("Answered (ASR)", "应答率 (ASR)"),
    "card_failed_calls": ("Failed calls", "失败呼叫"),
    "card_top_failure": ("Top failure code", "最多的失败码"),
    "card_worst_responder": ("Worst responder", "失败最多的响应方"),
    "card_onset": ("Failure onset (UTC)", "失败开始 (UTC)"),
    "n_failures": ("{n} failures", "{n} 个失败"),
    "of_settled": ("of {n} settled calls", "共 {n} 个已有结果的呼叫"),
    "first_packet": ("First packet", "首个数据包"),
    "last_packet": ("Last packet", "最后数据包"),
    # columns
    "item": ("Item", "项目"),
    "value": ("Value", "值"),
    "header": ("Header", "头字段"),
    "method": ("Method", "方法"),
    "code": ("Code", "状态码"),
    "reason": ("Reason", "原因"),
    "sent_as": ("Sent as", "实际原因短语"),
    "count": ("Packets", "数据包"),
    "unique": ("Unique", "去重后"),
    "retrans": ("Retrans.", "重传"),
    "ratio": ("Ratio", "比例"),
    "share": ("Share", "占比"),
    "class": ("Class", "类别"),
    "category": ("Category", "类型"),
    "outcome": ("Outcome", "结果"),
    "measure": ("Measure", "度量"),
    "samples": ("Samples", "样本数"),
    "mean": ("Mean", "平均"),
    "pdd": ("Post-dial delay (ms)", "拨号后延迟 (毫秒)"),
    "answer_time": ("Answer time (ms)", "应答时间 (毫秒)"),
    "rrd": ("Registration delay (ms)", "注册请求延迟 (毫秒)"),
    "sequence": ("Final responses", "最终响应序列"),
    "with_retry_after": ("With R-A", "带 R-A"),
    "values_s": ("R-A values", "R-A 取值"),
    "retried": ("Retried", "已重试"),
    "honoured": ("Respected", "遵守"),
    "too_early": ("Too early", "过早"),
    "retried_without_ra": ("No-R-A retry", "无 R-A 重试"),
    "not_retried": ("Not retried", "未重试"),
    "respected_share": ("Respected %", "遵守比例"),
    "retry_after_s": ("Retry-After (s)", "Retry-After (秒)"),
    "failure_share": ("Failure share", "失败占比"),
    "challenges": ("Auth challenges", "认证质询"),
    "verdict": ("Retry", "重试类型"),
    "verdict_honoured": ("respected Retry-After", "遵守 Retry-After"),
    "verdict_too_early": ("before Retry-After", "早于 Retry-After"),
    "verdict_without_retry_after": ("no Retry-After given", "未给出 Retry-After"),
    "min_s": ("Min (s)", "最小 (秒)"),
    "median_s": ("Median (s)", "中位数 (秒)"),
    "p90_s": ("p90 (s)", "p90 (秒)"),
    "max_s": ("Max (s)", "最大 (秒)"),
    "median_ratio": ("Median × R-A", "中位数 × R-A"),
    "caller": ("Caller", "主叫"),
    "retries": ("Retries", "重试"),
    "worst_gap": ("Shortest gap (s)", "最短间隔 (秒)"),
    "start": ("Start (UTC)", "开始 (UTC)"),
    "end": ("End (UTC)", "结束 (UTC)"),
    "target": ("Target", "目标"),
    "callers": ("Callers", "主叫数"),
    "early_retries": ("Early retries", "过早重试"),
    "responder": ("Responder", "响应方"),
    "callee": ("Callee", "被叫"),
    "finals": ("Finals", "最终响应"),
    "share_of_failures": ("Of all failures", "占全部失败"),
    "bucket_start": ("Time (UTC)", "时间 (UTC)"),
    "mark": ("Finding", "发现"),
    "mark_onset": ("onset #{n}", "开始 #{n}"),
    "mark_end": ("end #{n}", "结束 #{n}"),
    "requester": ("Requester", "请求方"),
    "failures": ("Failures", "失败数"),
    "top_code": ("Top code", "最多状态码"),
    "codes": ("Codes", "状态码"),
    "attempts": ("Attempts", "注册尝试"),
    "metric": ("Metric", "指标"),
    "unit": ("Unit", "单位"),
    "definition": ("Definition", "定义"),
    "reference": ("Reference", "出处"),
    "file": ("File", "文件"),
    "format": ("Format", "格式"),
    "problems": ("Problems", "问题"),
    "errors": ("Errors", "错误"),
    "frames": ("frames", "帧"),
    "examples": ("Examples", "示例"),
    "no_problems": ("no problems", "无问题"),
    "icmp_unreachable": (
        "ICMP unreachable for SIP to {destination}: {count} ({reason})",
        "发往 {destination} 的 SIP 收到 ICMP 不可达：{count}（{reason}）",
    ),
    "duplicates": ("Capture duplicates (not counted)", "抓包重复（不计入）"),
    "duplicates_note": ("capture duplicates: {count}", "抓包重复：{count}"),
    "no_sip_none": ("no SIP found: the file holds no packets", "未发现 SIP：文件中没有报文"),
    "no_sip_whole": (
        "no SIP found in {packets} packets; seen instead: {seen}",
        "在 {packets} 个报文中未发现 SIP；实际内容：{seen}",
    ),
    "no_sip_first": (
        "no SIP found; its first {packets} packets held: {seen}",
        "未发现 SIP；前 {packets} 个报文为：{seen}",
    ),
    "tunnels_not_decoded": ("tunnels not decoded: {tunnels}", "未解封装的隧道：{tunnels}"),
    "files_without_sip": ("Files without SIP", "未发现 SIP 的文件"),
    "tunnels_unwrapped": ("unwrapped from tunnels: {tunnels}", "已解封装的隧道报文：{tunnels}"),
    # figures
    "fig_timeline": ("Unique responses per {interval} by class", "每 {interval} 各类别去重响应数"),
    "fig_timeline_category": (
        "Unique responses per {interval} by category",
        "每 {interval} 各类型去重响应数",
    ),
    "fig_time_axis": ("Time (UTC)", "时间 (UTC)"),
    "fig_failures": (
        "Failures per {interval} by class, and their share of final responses",
        "每 {interval} 各类别失败数及其占最终响应的比例",
    ),
    "fig_failures_count": ("Failures (unique 4xx-6xx)", "失败数 (去重 4xx-6xx)"),
    "fig_failure_share_axis": ("Failure share of finals (%)", "失败占最终响应比例 (%)"),
    "fig_responses_axis": ("Responses (unique)", "响应数 (去重)"),
    "fig_classes": ("Unique responses by class", "各类别去重响应数"),
    "fig_outcomes": ("Call outcomes", "呼叫结果"),
    "fig_calls_axis": ("Calls", "呼叫数"),
    "fig_pdd": ("Post-dial delay distribution", "拨号后延迟分布"),
    "fig_pdd_axis": ("Post-dial delay (ms)", "拨号后延迟 (毫秒)"),
    "fig_answer": ("Answer time distribution", "应答时间分布"),
    "fig_answer_axis": ("Time to answer (ms)", "应答时间 (毫秒)"),
    "fig_retry": ("Retry behaviour after failures by code", "各状态码失败后的重试行为"),
    "fig_failures_axis": ("Failed attempts", "失败尝试数"),
    "fig_code_axis": ("Final response code", "最终响应码"),
    # outcomes (schema.OUTCOMES)
    "outcome_answered": ("answered", "已应答"),
    "outcome_busy": ("busy", "忙"),
    "outcome_unavailable": ("unavailable / no answer", "不可用 / 无应答"),
    "outcome_declined": ("declined", "拒接"),
    "outcome_cancelled": ("cancelled", "已取消"),
    "outcome_not_found": ("not found", "未找到"),
    "outcome_redirected": ("redirected", "重定向"),
    "outcome_auth_failed": ("authentication failed", "认证失败"),
    "outcome_rejected": ("rejected", "被拒绝"),
    "outcome_server_failure": ("server failure", "服务器故障"),
    "outcome_no_final_response": ("no final response", "无最终响应"),
    "outcome_in_progress": ("in progress at capture end", "抓包结束时仍在进行"),
    # registration outcomes (schema.REGISTRATIONS.outcome)
    "reg_registered": ("registered", "注册成功"),
    "reg_failed": ("failed", "注册失败"),
    "reg_challenged_unanswered": ("challenge not answered", "认证质询未应答"),
    "reg_no_final_response": ("no final response", "无最终响应"),
    # notes
    "note_interval": ("Interval", "时间间隔"),
    "no_anomaly": ("No anomaly found.", "未发现异常。"),
    "note_failures_by": (
        "Finals = unique final responses (2xx-6xx, every method) of the row; failure share = "
        "its 4xx-6xx / its finals; of all failures = its 4xx-6xx / all {failures} in the capture.",
        "最终响应 = 该行去重后的最终响应 (2xx-6xx，所有方法)；失败占比 = 其 4xx-6xx / 其最终响应；"
        "占全部失败 = 其 4xx-6xx / 抓包中全部 {failures} 个失败。",
    ),
    "note_failure_timeline": (
        "Unique final responses per {interval} on {date} (1xx left out, empty buckets too); "
        "failure share = 4xx-6xx / the bucket's finals (2xx-6xx). Onset and end: the findings "
        "of the same number.",
        "{date} 每 {interval} 去重后的最终响应（不含 1xx 与空时段）；失败占比 = 4xx-6xx / "
        "该时段最终响应 (2xx-6xx)。开始与结束对应同编号的发现。",
    ),
    "note_findings": (
        "Most severe first; times are UTC on {date}. How each is detected: README, Findings.",
        "按严重程度排序；时间为 {date} 的 UTC 时间。检测方法见 README 的 Findings 一节。",
    ),
    "severity": ("Severity", "严重程度"),
    "severity_high": ("high", "高"),
    "severity_medium": ("medium", "中"),
    "severity_low": ("low", "低"),
    "finding": ("Finding", "发现"),
    "evidence": ("evidence", "依据"),
    "note_failures_by_method": (
        "Unique responses (retransmissions removed) by their CSeq method; failure share = "
        "4xx-6xx of the final responses. A 401/407 the client answered with credentials is a "
        "challenge (RFC 3261 §22.2), counted apart and not in the classes.",
        "按 CSeq 方法统计的去重响应 (不含重传)；失败占比 = 4xx-6xx 占最终响应的比例。"
        "客户端随后带凭据重发的 401/407 是认证质询 (RFC 3261 §22.2)，单独计数，不计入各类别。",
    ),
    "note_top": ("showing the top {n}", "仅显示前 {n} 项"),
    "note_challenges_apart": (
        "{n} 401/407 challenges that the client answered with credentials are not failures "
        "and are left out.",
        "{n} 个客户端随后带凭据应答的 401/407 认证质询不算失败，未计入。",
    ),
    "note_answer_missing": (
        "{n} answered calls ended with a BYE although their 2xx is not in the capture "
        "(a BYE in the dialog proves the answer, RFC 3261 §15).",
        "{n} 个呼叫的 2xx 不在抓包中，但对话内的 BYE 证明已应答并已结束（RFC 3261 §15）。",
    ),
    "note_b2bua_legs": (
        "{n} calls are another leg of a call above (a B2BUA's side, linked by a correlation "
        "header): each end-to-end call is counted once, on the caller's leg.",
        "{n} 个呼叫是上表某呼叫经 B2BUA 的另一段 (由关联头部关联)：每个端到端呼叫只计一次，"
        "按主叫一侧计。",
    ),
    "note_figure_text": (
        "Figure text is in English: no Chinese font is installed for the charts.",
        "图表文字为英文：系统未安装中文字体。",
    ),
    "note_unique": (
        "Packets count every copy; unique removes retransmissions. Shares are of unique responses.",
        "数据包计入每一份拷贝；去重后不含重传。占比按去重响应计算。",
    ),
    "undefined": ("undefined", "无定义"),
    "note_server_retries": (
        "A 503's Retry-After speaks for the whole server (RFC 3261 §21.5.4), so this view "
        "follows the next INVITE from the same client host to that server, whoever the caller "
        "and callee: new calls count too, so it can differ from the per-target table above "
        "without contradicting it. Nobody has to have retried for an INVITE to be sent during "
        "the Retry-After time.",
        "503 的 Retry-After 针对整个服务器 (RFC 3261 §21.5.4)，因此本表跟踪同一客户端主机发往该"
        "服务器的下一个 INVITE，不论主叫与被叫：新呼叫也计入，所以结果可以与上面的按目标统计不同，"
        "两者并不矛盾。在 Retry-After 时间内发出的 INVITE 不一定是重试。",
    ),
    "note_retry_after": (
        "Per target: a retry is the same caller's next INVITE to the same callee (a new call "
        "counts). Respected / too early judge those retries against the failure's Retry-After; "
        "respected % = respected / (respected + too early).",
        "按目标：重试指同一主叫对同一被叫的下一个 INVITE (新呼叫也算)。遵守 / 过早是按失败响应的 "
        "Retry-After 判定这些重试；遵守比例 = 遵守 / (遵守 + 过早)。",
    ),
    "server_next_invite": ("Next INVITE seen", "之后有 INVITE"),
    "server_waited": ("After Retry-After", "Retry-After 之后"),
    "server_during": ("During Retry-After", "Retry-After 期间"),
    "server_waited_share": ("Waited %", "等待比例"),
}

#: Metric definitions in Chinese, keyed by metric name (the English ones come with the analysis).
METRIC_DEFINITIONS_ZH: Final[dict[str, str]] = {
    "RRD": "成功注册从首个 REGISTER 到其 2xx 的平均时间，含认证质询。",
    "SRD": "呼叫从首个 INVITE 到首个非 100 临时响应 (或最终响应) 的平均时间。",
    "SRD_success": "已应答呼叫从首个 INVITE 到首个非 100 临时响应 (或 2xx) 的平均时间。",
    "SRD_failure": (
        "失败呼叫从首个 INVITE 到首个非 100 临时响应或失败响应的平均时间 (不含已取消呼叫)。"
    ),
    "SDD": "从 BYE 到其最终响应的平均时间。",
    "SDD_success": "从 BYE 到其 2xx 的平均时间 (在代理处只计主叫侧)。",
    "SDD_failure": "从 BYE 到非 2xx 最终响应的平均时间 (断开失败；在代理处只计主叫侧)。",
    "SDT": "从应答呼叫的 2xx 到 BYE 的平均时间。",
    "SDT_success": "从应答呼叫的 2xx 到 BYE 的平均时间，BYE 得到 2xx。",
    "SDT_failure": "从应答呼叫的 2xx 到无响应 BYE 的 Timer F 超时 (32 秒) 的平均时间。",
    "SER": "每 100 个呼叫中以 200 应答的呼叫数，不计被 3xx 重定向的呼叫。",
    "SEER": "每 100 个呼叫中以 200、480、486、600 或 603 结束的呼叫数，不计被 3xx 重定向的呼叫。",
    "SER_transactions": (
        "每 100 个新会话 INVITE 事务中以 200 应答的事务数 (每次 401/407 质询都计入，"
        "不计 3xx；在代理处只计主叫侧)。"
    ),
    "ISA": "每 100 个呼叫中以 408、500、503 或 504 结束的呼叫数。",
    "SCR": "每 100 个呼叫中已应答且以得到 2xx 的 BYE 结束的呼叫数 (不计抓包结束时仍在通话的呼叫)。",
    "SCR_literal": "每 100 个呼叫中没有因缺少响应 (无最终响应、408、BYE 无应答) 而失败的呼叫数。",
    "IRA": "每 100 次注册尝试中以失败 (除 401/402/407 外的 4xx、5xx、6xx) 或无最终响应告终的次数。",
    "ASR": (
        "应答占用比：每 100 个已有结果的呼叫中以 2xx 应答的呼叫数 "
        "(抓包结束时仍在进行的呼叫不计入分母)。"
    ),
    "NER": (
        "网络有效率：每 100 个已有结果的呼叫中已应答、忙、无应答、拒接或被主叫取消 (网络已尽其责) "
        "的呼叫数 (抓包结束时仍在进行的呼叫不计入分母)。"
    ),
    "ACD": "平均通话时长：已应答呼叫从 2xx 到 BYE 的平均时间。",
    "PDD": "拨号后延迟：呼叫从首个 INVITE 到首个 18x (无 18x 时为 2xx) 的平均时间。",
}

#: Catalogue categories (data/status_codes.csv) in Chinese; an unknown one is shown as it is.
CATEGORY_ZH: Final[dict[str, str]] = {
    "provisional": "临时响应",
    "success": "成功",
    "redirect": "重定向",
    "request-error": "请求错误",
    "policy/security": "策略/安全",
    "not-found/routing": "未找到/路由",
    "server-error": "服务器错误",
    "media-negotiation": "媒体协商",
    "callee-declined": "被叫拒绝",
    "auth-challenge": "认证质询",
    "timeout": "超时",
    "callee-busy": "被叫忙",
    "callee-unavailable": "被叫不可用",
    "cancelled": "已取消",
    "overload": "过载",
}


def label(key: str, lang: Lang = "en", **fields: object) -> str:
    """The text for ``key`` in ``lang``; ``fields`` fill ``{name}`` placeholders."""
    en, zh = LABELS[key]
    text = zh if lang == "zh" else en
    return text.format(**fields) if fields else text


def outcome_label(outcome: str, lang: Lang = "en") -> str:
    """A call outcome (schema.OUTCOMES) as a reader would say it."""
    key = f"outcome_{outcome}"
    return label(key, lang) if key in LABELS else outcome


def registration_label(outcome: str, lang: Lang = "en") -> str:
    """A registration outcome (schema.REGISTRATIONS.outcome) as a reader would say it."""
    key = f"reg_{outcome}"
    return label(key, lang) if key in LABELS else outcome


def category_label(category: str, lang: Lang = "en") -> str:
    """A catalogue category in ``lang``; categories without a translation stay as they are."""
    if lang == "zh":
        return CATEGORY_ZH.get(category.lower(), category)
    return category


def metric_definition(name: str, english: str, lang: Lang = "en") -> str:
    """The definition of metric ``name``: the analysis' English sentence or its Chinese form."""
    if lang == "zh":
        return METRIC_DEFINITIONS_ZH.get(name, english)
    return english


#: Damage reasons in Chinese: the SIP parser's (``schema.MALFORMED_REASONS``) and the readers'.
MALFORMED_ZH: Final[dict[str, str]] = {
    "bad start line": "起始行错误",
    "missing mandatory header": "缺少必需头字段",
    "bad header line": "头字段行错误",
    "bad Content-Length": "Content-Length 错误",
    "body shorter than Content-Length": "消息体短于 Content-Length",
    "truncated by snaplen": "被抓包长度 (snaplen) 截断",
    "not SIP on a SIP port": "SIP 端口上的非 SIP 数据",
    "bad Retry-After": "Retry-After 错误",
    "undecodable packet": "无法解码的数据包",
    "timestamp out of order": "时间戳乱序",
    "timestamp out of range": "时间戳超出范围",
    "incomplete IP fragments": "IP 分片不完整",
    "malformed HEP packet": "HEP 数据包格式错误",
    "interface cap: packet skipped": "接口数超出上限:数据包被跳过",
    "TCP gap": "TCP 数据缺口",
    "TCP bytes outside a SIP message": "SIP 消息之外的 TCP 字节",
    "TCP stream ended inside a message": "TCP 流在消息中途结束",
    "TCP message without Content-Length": "TCP 消息缺少 Content-Length",
    "TCP message over size cap": "TCP 消息超出大小上限",
    "TCP buffer cap: stream dropped": "TCP 缓冲总量超限:数据流被丢弃",
    "TCP data outside the window": "TCP 窗口之外的数据",
}

#: Words of the metric references that are not names, in Chinese.
_REFERENCE_ZH: Final[tuple[tuple[str, str], ...]] = (
    ("operator KPI", "运营指标"),
    ("(per transaction)", "(按事务)"),
    ("(literal reading)", "(字面解读)"),
)


def malformed_label(reason: str, lang: Lang = "en") -> str:
    """A malformed-message reason in ``lang`` (an unknown reason stays as the decoder wrote it)."""
    return MALFORMED_ZH.get(reason, reason) if lang == "zh" else reason


def reference_label(reference: str, lang: Lang = "en") -> str:
    """A metric's reference ('RFC 6076 §4.6 (per transaction)', 'operator KPI') in ``lang``."""
    if lang == "zh":
        for english, chinese in _REFERENCE_ZH:
            reference = reference.replace(english, chinese)
    return reference
