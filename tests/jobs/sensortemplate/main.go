// Command sensortemplate runs a Sensor parameter's dataTemplate the way Argo Events does: Go's
// text/template with Sprig's hermetic functions, over {"Input": <the event's data as JSON>}.
// With "expression", it evaluates a WorkflowTemplate's retryStrategy expression instead, the way
// the workflow controller does: expr-lang over {"lastRetry": {...}} with Argo's asInt.
//
// Input on stdin, JSON: {"template": "...", "event": {...}} or {"expression": "...",
// "lastRetry": {"exitCode": "3", "status": "Failed", ...}}. Output on stdout: the result.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	"github.com/expr-lang/expr"
)

type request struct {
	Template   string            `json:"template"`
	Event      any               `json:"event"`
	Expression string            `json:"expression"`
	LastRetry  map[string]string `json:"lastRetry"`
}

// asInt is Argo Workflows' asInt for the strings its retry variables are: an error otherwise.
func asInt(value string) (int64, error) {
	return strconv.ParseInt(value, 10, 64)
}

func evaluate(req request) {
	env := map[string]any{"lastRetry": req.LastRetry, "asInt": asInt}
	program, err := expr.Compile(req.Expression, expr.Env(env), expr.AsBool())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	output, err := expr.Run(program, env)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Print(output)
}

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if req.Expression != "" {
		evaluate(req)
		return
	}
	tmpl, err := template.New("param").Funcs(sprig.HermeticTxtFuncMap()).Parse(req.Template)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := tmpl.Execute(os.Stdout, map[string]any{"Input": req.Event}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
