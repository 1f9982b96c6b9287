// The control panel: sign in with an admin API key, then webhooks, the
// webhook form with live validation, and delivery logs. Routes live in the
// URL's hash, so the host serves one page.

import init, { fieldCatalog, type Catalog } from "@cloudcx/inbox-rules";
import { ApiError, apiKey, call, setApiKey, type StoredWebhook } from "./api";
import { h, mount, uid } from "./dom";
import { lang, setLang, t, type Lang } from "./i18n";
import { catalogPage } from "./views/catalog";
import { deliveryLog } from "./views/deliveries";
import { webhookForm } from "./views/form";
import { webhookList } from "./views/list";
import "./style.css";

const app = document.querySelector<HTMLElement>("#app");

function header(): HTMLElement {
  const choose = h(
    "select",
    { id: uid("lang"), "aria-label": t("language") },
    h("option", { value: "en", selected: lang() === "en" }, "English"),
    h("option", { value: "zh", selected: lang() === "zh" }, "简体中文"),
  );
  choose.addEventListener("change", () => {
    setLang(choose.value as Lang);
    void route();
  });
  const signOut = apiKey()
    ? h(
        "button",
        {
          type: "button",
          onclick: () => {
            setApiKey(null);
            void route();
          },
        },
        t("signOut"),
      )
    : null;
  const catalogLink = apiKey() ? h("a", { href: "#/catalog" }, t("catalog")) : null;
  return h(
    "header",
    {},
    h("h1", {}, h("a", { href: "#/" }, t("title"))),
    h("div", { class: "header-tools" }, catalogLink, choose, signOut),
  );
}

function signIn(main: HTMLElement, problem?: string): void {
  const key = h("input", { type: "password", id: uid("key"), autocomplete: "off", required: true });
  const form = h(
    "form",
    { class: "sign-in" },
    h("label", { for: key.id }, t("apiKey")),
    key,
    h("small", { class: "help" }, t("apiKeyHelp")),
    problem ? h("p", { class: "problem", role: "alert" }, problem) : null,
    h("button", { type: "submit", class: "primary" }, t("signIn")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setApiKey(key.value.trim());
    try {
      await call("GET", "/v1/webhooks?limit=1");
      location.hash = "#/";
      await route();
    } catch {
      setApiKey(null);
      signIn(main, t("badKey"));
    }
  });
  mount(main, h("h2", {}, t("signIn")), form);
  key.focus();
}

let catalog: Catalog;

async function route(): Promise<void> {
  if (!app) return;
  const main = h("main", { id: "main" });
  mount(app, header(), main);
  if (!apiKey()) {
    signIn(main);
    return;
  }
  const [, view, id] = location.hash.replace(/^#/, "").split("/");
  try {
    if (view === "new") {
      webhookForm(main, catalog, null, () => (location.hash = "#/"));
    } else if (view === "edit" && id) {
      const stored = await call<StoredWebhook>("GET", `/v1/webhooks/${id}`);
      webhookForm(main, catalog, stored, () => (location.hash = "#/"));
    } else if (view === "deliveries" && id) {
      await deliveryLog(main, catalog, id);
    } else if (view === "catalog") {
      catalogPage(main, catalog);
      if (id) document.getElementById(`event-${id}`)?.scrollIntoView();
    } else {
      await webhookList(main);
    }
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      setApiKey(null);
      signIn(main, t("badKey"));
      return;
    }
    mount(main, h("p", { class: "problem", role: "alert" }, error instanceof Error ? error.message : String(error)));
  }
}

await init();
catalog = fieldCatalog();
window.addEventListener("hashchange", () => void route());
await route();
