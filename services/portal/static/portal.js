// Progressive enhancement only: every page works without this file. GOV.UK Frontend's
// components add their conveniences (the error summary takes focus, the notification banner
// is announced) where the browser supports ES modules.
import { initAll } from "/static/govuk/govuk-frontend.min.js";

document.body.classList.add("js-enabled", "govuk-frontend-supported");
initAll();
