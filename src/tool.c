/* tool.c — see include/forge/tool.h. */
#include "forge/tool.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CALC_DEPTH 64
#define CALC_STACK 256

static int prec(char op)
{
	switch (op) {
	case '+': case '-': return 1;
	case '*': case '/': case '%': return 2;
	case 'u': return 3;      /* unary minus */
	case '^': return 4;
	}
	return 0;
}

static int apply(double *vals, int *nv, char op, char *err, size_t errlen)
{
	if (op == 'u') {
		if (*nv < 1)
			goto missing;
		vals[*nv - 1] = -vals[*nv - 1];
		return 0;
	}
	if (*nv < 2)
		goto missing;
	double b = vals[--*nv], a = vals[*nv - 1], r;
	switch (op) {
	case '+': r = a + b; break;
	case '-': r = a - b; break;
	case '*': r = a * b; break;
	case '/':
		if (b == 0) {
			snprintf(err, errlen, "division by zero");
			return -1;
		}
		r = a / b;
		break;
	case '%':
		if (b == 0) {
			snprintf(err, errlen, "modulo by zero");
			return -1;
		}
		r = fmod(a, b);
		break;
	default: r = pow(a, b); break;
	}
	if (!isfinite(r)) {
		snprintf(err, errlen, "result is not a finite number");
		return -1;
	}
	vals[*nv - 1] = r;
	return 0;
missing:
	snprintf(err, errlen, "operator '%c' is missing an operand", op == 'u' ? '-' : op);
	return -1;
}

int fg_calc(const char *s, size_t n, double *out, char *err, size_t errlen)
{
	double vals[CALC_STACK];
	char ops[CALC_STACK];
	int nv = 0, no = 0, depth = 0, expect_operand = 1;
	size_t i = 0;

	while (i < n) {
		char c = s[i];
		if (c == ' ' || c == '\t' || c == '\n') {
			i++;
			continue;
		}
		if (expect_operand) {
			if (c == '(') {
				if (++depth > CALC_DEPTH) {
					snprintf(err, errlen, "expression nested deeper than %d parentheses",
						 CALC_DEPTH);
					return -1;
				}
				if (no == CALC_STACK)
					goto too_long;
				ops[no++] = '(';
				i++;
			} else if (c == '-' || c == '+') {
				if (c == '-') {
					if (no == CALC_STACK)
						goto too_long;
					ops[no++] = 'u';
				}
				i++;
			} else if ((c >= '0' && c <= '9') || c == '.') {
				char buf[64];
				size_t k = 0;
				while (i < n && k < sizeof(buf) - 1 &&
				       ((s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == 'e' ||
					s[i] == 'E' || ((s[i] == '-' || s[i] == '+') && k > 0 &&
							(buf[k - 1] == 'e' || buf[k - 1] == 'E'))))
					buf[k++] = s[i++];
				buf[k] = '\0';
				char *end;
				double v = strtod(buf, &end);
				if (*end || k == 0) {
					snprintf(err, errlen, "bad number '%s' at offset %zu", buf, i - k);
					return -1;
				}
				if (nv == CALC_STACK)
					goto too_long;
				vals[nv++] = v;
				expect_operand = 0;
			} else {
				snprintf(err, errlen, "unexpected '%c' at offset %zu", c, i);
				return -1;
			}
			continue;
		}
		if (c == ')') {
			while (no > 0 && ops[no - 1] != '(')
				if (apply(vals, &nv, ops[--no], err, errlen) < 0)
					return -1;
			if (no == 0) {
				snprintf(err, errlen, "unbalanced ')' at offset %zu", i);
				return -1;
			}
			no--;
			depth--;
			i++;
			continue;
		}
		if (!prec(c) || c == 'u') {
			snprintf(err, errlen, "unexpected '%c' at offset %zu", c, i);
			return -1;
		}
		/* ^ is right-associative; the others left */
		while (no > 0 && ops[no - 1] != '(' &&
		       (prec(ops[no - 1]) > prec(c) || (prec(ops[no - 1]) == prec(c) && c != '^')))
			if (apply(vals, &nv, ops[--no], err, errlen) < 0)
				return -1;
		if (no == CALC_STACK)
			goto too_long;
		ops[no++] = c;
		expect_operand = 1;
		i++;
	}
	if (expect_operand) {
		snprintf(err, errlen, nv == 0 && no == 0 ? "empty expression"
							 : "expression ends with an operator");
		return -1;
	}
	while (no > 0) {
		if (ops[no - 1] == '(') {
			snprintf(err, errlen, "unbalanced '('");
			return -1;
		}
		if (apply(vals, &nv, ops[--no], err, errlen) < 0)
			return -1;
	}
	if (nv != 1) {
		snprintf(err, errlen, "malformed expression");
		return -1;
	}
	*out = vals[0];
	return 0;
too_long:
	snprintf(err, errlen, "expression has more than %d terms pending", CALC_STACK);
	return -1;
}

/* calculator {"expression": "..."} */
static int run_calculator(const char *args, size_t n, char *out, size_t outlen)
{
	json_error_t je;
	json_t *j = json_loadb(args, n, 0, &je);
	const char *expr = json_string_value(json_object_get(j, "expression"));
	int rc = -1;
	if (!json_is_object(j)) {
		snprintf(out, outlen, "error: arguments are not a JSON object: %s", je.text);
	} else if (!expr) {
		snprintf(out, outlen, "error: \"expression\" (a string) is required");
	} else {
		double v;
		char err[128];
		if (fg_calc(expr, strlen(expr), &v, err, sizeof(err)) < 0) {
			snprintf(out, outlen, "error: %s", err);
		} else {
			snprintf(out, outlen, "%.15g", v);
			rc = 0;
		}
	}
	json_decref(j);
	return rc;
}

static const fg_tool_t tools[] = {
	{ "calculator", "Evaluate an arithmetic expression (+ - * / % ^ and parentheses).",
	  "{\"type\":\"object\",\"properties\":{\"expression\":{\"type\":\"string\","
	  "\"description\":\"for example (2+3)*4\"}},\"required\":[\"expression\"]}",
	  1, run_calculator },
};

const fg_tool_t *fg_tool_find(const char *name, size_t n)
{
	for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++)
		if (strlen(tools[i].name) == n && memcmp(tools[i].name, name, n) == 0)
			return &tools[i];
	return NULL;
}

json_t *fg_tools_json(void)
{
	json_t *a = json_array();
	for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++) {
		json_t *schema = json_loads(tools[i].schema, 0, NULL);
		json_array_append_new(a, json_pack("{s:s,s:{s:s,s:s,s:o}}", "type", "function",
			"function", "name", tools[i].name, "description", tools[i].description,
			"parameters", schema));
	}
	return a;
}
