<?php
/**
 * Runs the WHMCS module's functions as WHMCS would, without WHMCS: the documented $params of
 * a service (read from a JSON file), logModuleCall writing to a JSON-lines log, and a
 * localAPI for the hooks that answers GetInvoice / GetClientsProducts from the same file and
 * runs ModuleCustom through the module. Usage:
 *   php harness.php FUNCTION params.json log.jsonl      (a module function)
 *   php harness.php hook:InvoicePaid params.json log.jsonl
 * Prints {"result": ...} on stdout.
 */

define('SUSPENSIONAGENT_HARNESS', true);
[$self, $function, $paramsFile, $logFile] = $argv;
$params = json_decode(file_get_contents($paramsFile), true);
$hooks = [];

function logModuleCall($module, $action, $request, $response, $data = '', $replace = [])
{
    global $logFile;
    $text = json_encode(['module' => $module, 'action' => $action, 'request' => $request,
        'response' => $response]);
    foreach ($replace as $secret) {
        $text = str_replace($secret, '***', $text);
    }
    file_put_contents($logFile, $text . "\n", FILE_APPEND);
}

function add_hook($name, $priority, $callback)
{
    global $hooks;
    $hooks[$name][] = $callback;
}

function localAPI($command, $values)
{
    global $params;
    if ($command === 'GetInvoice') {
        return ['items' => ['item' => [['type' => 'Hosting', 'relid' => $params['serviceid']]]]];
    }
    if ($command === 'GetClientsProducts') {
        return ['products' => ['product' => [['id' => $params['serviceid'],
            'module' => 'suspensionagent']]]];
    }
    if ($command === 'ModuleCustom') {
        $result = call_user_func('suspensionagent_' . $values['func_name'], $params);
        return ['result' => $result === 'success' ? 'success' : 'error', 'message' => $result];
    }
    return ['result' => 'error', 'message' => 'unknown command ' . $command];
}

require __DIR__ . '/../../contrib/whmcs/modules/servers/suspensionagent/suspensionagent.php';
require __DIR__ . '/../../contrib/whmcs/includes/hooks/suspensionagent.php';

if (strpos($function, 'hook:') === 0) {
    $name = substr($function, 5);
    foreach ($hooks[$name] ?? [] as $callback) {
        $callback(['invoiceid' => 1077]);
    }
    echo json_encode(['result' => 'ran ' . count($hooks[$name] ?? []) . ' hook(s)']), "\n";
    exit(0);
}
echo json_encode(['result' => call_user_func('suspensionagent_' . $function, $params)]), "\n";
