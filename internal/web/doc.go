// Package web is Prescient's dashboard: the pages (HTML, JavaScript and
// CSS embedded in the binary, with the uPlot chart library that `make web`
// fetches from npm into assets/vendor), the data they need beyond the
// HTTP API (the node's recent history, live tasks with the scheduler's
// view, a task's whole picture in one reply, signatures), and the token
// gate that `prescient dashboard` and `serve --listen` put in front of it.
//
// The daemon owns a Dashboard: it registers the routes on its API mux
// (Dashboard.Register) and runs its history recorder (Dashboard.Run) as
// one of its loops. Everything the dashboard shows comes from a Source,
// which answers as the caller of each request (a user sees only their own
// tasks, as in the API). The pages are read-only.
//
//	browser ──?token=T once, then a cookie──► Gate ──► /dashboard/ (assets)
//	                                                   /v1/dashboard/{node,live,task/ID,signatures}
//	                                                   /v1/events, /v1/tasks/ID/logs (the API)
package web
