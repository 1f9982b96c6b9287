// A signing secret, shown once, with a copy button.

import { h } from "../dom";
import { t } from "../i18n";

export function secretBox(secret: string): HTMLElement {
  const copy = h("button", { type: "button" }, t("copy"));
  copy.addEventListener("click", () => {
    void navigator.clipboard?.writeText(secret).then(() => {
      copy.textContent = t("copied");
    });
  });
  return h(
    "div",
    { class: "secret", role: "status" },
    h("p", {}, t("secretOnce")),
    h("code", { class: "secret-value" }, secret),
    " ",
    copy,
  );
}
