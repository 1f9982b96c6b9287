// The panel's words in English and Simplified Chinese. The language comes
// from the browser unless the admin picked one (kept in localStorage).
// Diagnostic codes map to a sentence in both; the engine's own message,
// which names the exact token, is shown beside it.

import type { DiagnosticCode } from "@cloudcx/inbox-rules";

export type Lang = "en" | "zh";

const en = {
  title: "Inbox Tickets Webhooks",
  signIn: "Sign in",
  signOut: "Sign out",
  apiKey: "Admin API key",
  apiKeyHelp: "Made by `inbox-webhooks tenant create`. Kept in this tab only.",
  badKey: "This key was not accepted.",
  language: "Language",
  webhooks: "Webhooks",
  newWebhook: "New webhook",
  noWebhooks: "No webhooks yet.",
  name: "Name",
  url: "URL",
  events: "Events",
  enabled: "Enabled",
  disabled: "Disabled",
  breaker: "Receiver",
  lastDelivery: "Last delivery",
  none: "none",
  actions: "Actions",
  edit: "Edit",
  enable: "Enable",
  disable: "Disable",
  delete: "Delete",
  confirmDelete: "Delete this webhook and its secrets?",
  yesDelete: "Yes, delete",
  cancel: "Cancel",
  deliveries: "Deliveries",
  channels: "Channels",
  accounts: "Channel accounts",
  commaSeparated: "comma-separated; leave both empty for every channel",
  conditions: "Conditions",
  addCondition: "Add condition",
  remove: "Remove",
  field: "Field",
  operator: "Operator",
  value: "Value",
  customKey: "Custom field key",
  match: "Match",
  meetAll: "Meet all conditions",
  meetAny: "Meet any condition",
  logicExpression: "Logic expression",
  expression: "Expression",
  expressionHelp: "Condition numbers with and, or and parentheses, e.g. (1 or 2) and 3",
  fix: "Replace {from} with {to}",
  valid: "Valid",
  save: "Save",
  saved: "Saved.",
  saving: "Saving…",
  tryIt: "Try it",
  tryItHelp: "A sample event, evaluated in your browser by the same engine the server runs.",
  sampleEvent: "Sample event (JSON)",
  notJson: "This is not valid JSON: {error}",
  fires: "Fires",
  doesNotFire: "Does not fire",
  saw: "saw",
  secretOnce: "Signing secret, shown only now:",
  copy: "Copy",
  copied: "Copied",
  rotateSecret: "Rotate secret",
  clientTls: "Client certificate (mutual TLS)",
  clientTlsHelp: "For receivers that ask for one. Paste PEM; the key is stored encrypted and never shown again.",
  clientCertificate: "Client certificate (PEM)",
  clientKey: "Client key (PEM)",
  clientTlsCurrent: "Presents {subject}, valid until {notAfter}.",
  clientTlsRemove: "Remove the client certificate",
  sendTest: "Send test event",
  testSent: "Delivered: {status}",
  testFailed: "Not delivered: {error}",
  resend: "Resend",
  event: "Event",
  state: "State",
  attempts: "Attempts",
  status: "Status",
  duration: "Duration",
  answer: "Answer",
  noDeliveries: "No deliveries yet.",
  back: "Back to webhooks",
  serverSaid: "The server refused it:",
  loading: "Loading…",
  warning: "Warning",
  error: "Error",
  closed: "healthy",
  open: "paused (failing)",
  half_open: "probing",
  pending: "pending",
  succeeded: "succeeded",
  failed: "failed",
  cancelled: "cancelled",
};

type Words = typeof en;

const zh: Words = {
  title: "Inbox Tickets 网络钩子",
  signIn: "登录",
  signOut: "退出",
  apiKey: "管理 API 密钥",
  apiKeyHelp: "由 `inbox-webhooks tenant create` 生成，只保存在此标签页中。",
  badKey: "此密钥未被接受。",
  language: "语言",
  webhooks: "网络钩子",
  newWebhook: "新建网络钩子",
  noWebhooks: "还没有网络钩子。",
  name: "名称",
  url: "URL",
  events: "事件",
  enabled: "已启用",
  disabled: "已停用",
  breaker: "接收方",
  lastDelivery: "最近投递",
  none: "无",
  actions: "操作",
  edit: "编辑",
  enable: "启用",
  disable: "停用",
  delete: "删除",
  confirmDelete: "删除此网络钩子及其密钥？",
  yesDelete: "确认删除",
  cancel: "取消",
  deliveries: "投递记录",
  channels: "渠道",
  accounts: "渠道账号",
  commaSeparated: "用逗号分隔；两项都留空表示所有渠道",
  conditions: "条件",
  addCondition: "添加条件",
  remove: "移除",
  field: "字段",
  operator: "运算符",
  value: "值",
  customKey: "自定义字段名",
  match: "匹配",
  meetAll: "满足所有条件",
  meetAny: "满足任一条件",
  logicExpression: "逻辑表达式",
  expression: "表达式",
  expressionHelp: "用 and、or 和括号组合条件编号，例如 (1 or 2) and 3",
  fix: "将 {from} 替换为 {to}",
  valid: "有效",
  save: "保存",
  saved: "已保存。",
  saving: "正在保存…",
  tryIt: "试一试",
  tryItHelp: "示例事件，由与服务器相同的引擎在浏览器中计算。",
  sampleEvent: "示例事件（JSON）",
  notJson: "不是有效的 JSON：{error}",
  fires: "会触发",
  doesNotFire: "不会触发",
  saw: "实际值",
  secretOnce: "签名密钥，仅显示这一次：",
  copy: "复制",
  copied: "已复制",
  rotateSecret: "轮换密钥",
  clientTls: "客户端证书（双向 TLS）",
  clientTlsHelp: "用于要求客户端证书的接收方。粘贴 PEM；私钥加密存储，之后不再显示。",
  clientCertificate: "客户端证书（PEM）",
  clientKey: "客户端私钥（PEM）",
  clientTlsCurrent: "出示 {subject}，有效期至 {notAfter}。",
  clientTlsRemove: "移除客户端证书",
  sendTest: "发送测试事件",
  testSent: "已投递：{status}",
  testFailed: "未投递：{error}",
  resend: "重新发送",
  event: "事件",
  state: "状态",
  attempts: "尝试次数",
  status: "状态码",
  duration: "耗时",
  answer: "响应",
  noDeliveries: "还没有投递记录。",
  back: "返回网络钩子列表",
  serverSaid: "服务器拒绝了：",
  loading: "加载中…",
  warning: "警告",
  error: "错误",
  closed: "正常",
  open: "已暂停（失败中）",
  half_open: "探测中",
  pending: "等待中",
  succeeded: "成功",
  failed: "失败",
  cancelled: "已取消",
};

/** A sentence per diagnostic code, in both languages. */
const codes: Record<Lang, Record<DiagnosticCode, string>> = {
  en: {
    empty_expression: "Write an expression.",
    fullwidth_character: "A full-width character: use the half-width one.",
    missing_space: "`and` and `or` need a space on both sides.",
    unbalanced_parentheses: "The parentheses do not match.",
    unknown_condition: "There is no condition with this number.",
    syntax_error: "The expression is not complete or not well formed.",
    too_long: "The expression is too long.",
    too_deep: "The parentheses are nested too deeply.",
    unused_condition: "This condition is not used by the expression.",
    unknown_field: "There is no such field.",
    operator_not_allowed: "This operator cannot be used with this field.",
    invalid_value: "This value is not valid here.",
    invalid_regex: "This pattern is not a valid regular expression.",
    duplicate_id: "Two conditions have the same number.",
    invalid_id: "Condition numbers go from 1 to 100.",
    too_many_conditions: "There are too many conditions.",
    invalid_url: "Enter an absolute http:// or https:// URL.",
    unknown_event: "There is no such event.",
    missing_field: "A required field is missing.",
    unknown_key: "A webhook has no such key.",
    duplicate_value: "This entry is listed twice.",
    too_many_items: "This list has too many entries.",
  },
  zh: {
    empty_expression: "请填写表达式。",
    fullwidth_character: "这是全角字符，请使用半角字符。",
    missing_space: "and 和 or 两侧都需要空格。",
    unbalanced_parentheses: "括号不匹配。",
    unknown_condition: "没有这个编号的条件。",
    syntax_error: "表达式不完整或格式不正确。",
    too_long: "表达式太长。",
    too_deep: "括号嵌套太深。",
    unused_condition: "表达式没有用到这个条件。",
    unknown_field: "没有这个字段。",
    operator_not_allowed: "这个字段不能使用此运算符。",
    invalid_value: "这个值在此处无效。",
    invalid_regex: "这不是有效的正则表达式。",
    duplicate_id: "两个条件的编号相同。",
    invalid_id: "条件编号应为 1 到 100。",
    too_many_conditions: "条件太多。",
    invalid_url: "请输入以 http:// 或 https:// 开头的完整 URL。",
    unknown_event: "没有这个事件。",
    missing_field: "缺少必填字段。",
    unknown_key: "Webhook 没有这个键。",
    duplicate_value: "这一项重复了。",
    too_many_items: "这个列表的项目太多。",
  },
};

const words: Record<Lang, Words> = { en, zh };

function initial(): Lang {
  const chosen = localStorage.getItem("inbox.lang");
  if (chosen === "en" || chosen === "zh") return chosen;
  return navigator.language.toLowerCase().startsWith("zh") ? "zh" : "en";
}

let current: Lang = initial();

export function lang(): Lang {
  return current;
}

export function setLang(next: Lang): void {
  current = next;
  localStorage.setItem("inbox.lang", next);
  document.documentElement.lang = next === "zh" ? "zh-CN" : "en";
}

export type Key = keyof Words;

/** The word for `key`, with `{name}` placeholders filled from `vars`. */
export function t(key: Key, vars: Record<string, string | number> = {}): string {
  return words[current][key].replace(/\{(\w+)\}/g, (_, name: string) => String(vars[name] ?? ""));
}

/** The sentence for a diagnostic code. */
export function codeText(code: DiagnosticCode | string): string {
  return (codes[current] as Record<string, string>)[code] ?? code;
}

setLang(current);
