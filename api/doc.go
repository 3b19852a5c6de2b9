// Package api is Prescient's public HTTP/JSON interface: the request and
// response types of the daemon (`prescient serve`) and a small Go client,
// used by the CLI and meant for other programs. It depends on nothing
// inside the module, so it can move into a module of its own.
//
// The routes, all JSON unless noted (docs/api.md has the details):
//
//	POST /v1/tasks                 submit a SubmitRequest → 202 Task (durable before the reply)
//	GET  /v1/tasks                 list, newest first (?state=&signature=&limit=)
//	GET  /v1/tasks/{id}            one task
//	POST /v1/tasks/{id}/cancel     cancel a queued or running task → Task
//	GET  /v1/tasks/{id}/logs       raw output (?stream=stdout|stderr&follow=true)
//	GET  /v1/tasks/{id}/curve      the measured samples → []Point
//	GET  /v1/events                Server-Sent Events, one "task" event per state change
//	GET  /v1/node                  capacity, use and queue → NodeStatus
//	GET  /metrics                  Prometheus metrics (text format)
//
// Errors are an Error object with an HTTP status of 4xx or 5xx; a refusal
// because of an input limit names the limit in Error.Limit.
package api
