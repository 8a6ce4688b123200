<?php
/**
 * WHMCS provisioning module for suspension-agent (issue 19 item 4).
 *
 * WHMCS's Suspend, Unsuspend, Terminate and Test Connection buttons (and its automation)
 * call the agent over OpenSSH with a key whose authorized_keys line forces
 * `suspension-agent serve-ssh --caller whmcs`: BatchMode, a pinned known_hosts file, no
 * shell on the agent's side. Every call carries an idempotency key derived from the
 * service, the action and the due date, so WHMCS's retries (Module Queue, a second click)
 * never act twice. Success is exit 0 with `ok: true` in the agent's JSON reply and nothing
 * else: a transport failure, a timeout or an unparsable reply is a failure with its reason.
 *
 * Server record: hostname or IP of the agent's control host, its SSH port and login.
 * Product options: the agent's name for the hosting server, the playbook, the private key
 * file and the known_hosts file (paths on the WHMCS host, readable by the web user only).
 */

if (!defined('WHMCS') && !defined('SUSPENSIONAGENT_HARNESS')) {
    die('This file cannot be accessed directly');
}

const SUSPENSIONAGENT_TIMEOUT = 120;

function suspensionagent_MetaData()
{
    return [
        'DisplayName' => 'suspension-agent',
        'APIVersion' => '1.1',
        'RequiresServer' => true,
        'DefaultSSLPort' => '22',
        'DefaultNonSSLPort' => '22',
    ];
}

function suspensionagent_ConfigOptions()
{
    return [
        'Agent server name' => ['Type' => 'text', 'Size' => '32',
            'Description' => 'The hosting server as named in the agent\'s config (servers:)'],
        'Playbook' => ['Type' => 'text', 'Size' => '32',
            'Description' => 'Empty: the agent\'s default playbook'],
        'SSH private key file' => ['Type' => 'text', 'Size' => '64',
            'Description' => 'Path of the key whose authorized_keys line forces serve-ssh'],
        'known_hosts file' => ['Type' => 'text', 'Size' => '64',
            'Description' => 'Pinned host key of the agent\'s control host'],
    ];
}

/** Run one agent verb over SSH; return [exit code, decoded reply or null, raw output]. */
function suspensionagent_call(array $params, array $words)
{
    $host = $params['serverip'] !== '' ? $params['serverip'] : $params['serverhostname'];
    $port = (string) ($params['serverport'] !== '' ? $params['serverport'] : '22');
    $remote = implode(' ', array_map('escapeshellarg', $words));
    $argv = ['ssh', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes',
        '-o', 'UserKnownHostsFile=' . $params['configoption4'], '-o', 'IdentitiesOnly=yes',
        '-o', 'ConnectTimeout=15', '-i', $params['configoption3'], '-p', $port,
        '-l', $params['serverusername'], '--', $host, $remote];
    $pipes = [];
    $proc = proc_open($argv, [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']],
        $pipes);
    if (!is_resource($proc)) {
        return [-1, null, 'could not start ssh'];
    }
    fclose($pipes[0]);
    stream_set_blocking($pipes[1], false);
    stream_set_blocking($pipes[2], false);
    $out = '';
    $err = '';
    $deadline = microtime(true) + SUSPENSIONAGENT_TIMEOUT;
    while (true) {
        $read = [$pipes[1], $pipes[2]];
        $none = null;
        $left = $deadline - microtime(true);
        if ($left <= 0) {
            proc_terminate($proc, 9);
            proc_close($proc);
            return [-1, null, 'the agent did not answer within ' . SUSPENSIONAGENT_TIMEOUT . ' s'];
        }
        if (stream_select($read, $none, $none, (int) ceil($left)) === false) {
            break;
        }
        foreach ($read as $pipe) {
            $chunk = fread($pipe, 65536);
            if ($pipe === $pipes[1]) {
                $out .= $chunk;
            } else {
                $err .= $chunk;
            }
        }
        if (feof($pipes[1]) && feof($pipes[2])) {
            break;
        }
    }
    fclose($pipes[1]);
    fclose($pipes[2]);
    $status = proc_close($proc);
    $reply = json_decode($out, true);
    return [$status, is_array($reply) ? $reply : null, trim($out . "\n" . $err)];
}

/** Log the call for WHMCS's module log, secrets replaced. */
function suspensionagent_log($action, array $words, $raw, $reply, array $params)
{
    $secrets = array_values(array_filter([$params['serverpassword'] ?? '',
        $params['serveraccesshash'] ?? ''], 'strlen'));
    logModuleCall('suspensionagent', $action, implode(' ', $words), $raw, $reply, $secrets);
}

/** The agent's one-line reason of a reply that is not a success. */
function suspensionagent_reason($status, $reply, $raw)
{
    if ($reply === null) {
        return 'suspension-agent: no reply (exit ' . $status . '): ' . substr($raw, 0, 300);
    }
    if (isset($reply['not_lifted'])) {
        $left = $reply['not_lifted'];
        $why = 'still suspended: held by ' . implode(', ', $left['holds']);
        if (!empty($left['invoices'])) {
            $why .= '; invoices overdue: ' . implode(', ', $left['invoices']);
        }
        return $why;
    }
    $errors = $reply['errors'] ?? [];
    $first = $errors[0]['message'] ?? ('exit ' . $status);
    return 'suspension-agent: ' . $first;
}

/** Run a verb; 'success' on exit 0 with ok: true, else the reason. */
function suspensionagent_run(array $params, $action, array $words)
{
    list($status, $reply, $raw) = suspensionagent_call($params, $words);
    suspensionagent_log($action, $words, $raw, $reply, $params);
    if ($status === 0 && is_array($reply) && ($reply['ok'] ?? false) === true) {
        return 'success';
    }
    return suspensionagent_reason($status, $reply, $raw);
}

function suspensionagent_key($params, $action, $extra = '')
{
    $model = $params['model'] ?? null;
    $due = preg_replace('/[^0-9-]/', '',
        (string) (is_object($model) ? $model->nextduedate : ($params['nextduedate'] ?? '')));
    $key = 'whmcs:' . (int) $params['serviceid'] . ':' . $action . ':' . ($due !== '' ? $due : 'none');
    return $extra !== '' ? $key . ':' . $extra : $key;
}

function suspensionagent_SuspendAccount(array $params)
{
    $reason = trim((string) ($params['suspendreason'] ?? ''));
    // WHMCS's own overdue suspension (its default reason) is billing's; any other reason
    // is a person's: the manual hold, which billing's reconcile never lifts.
    $billing = $reason === '' || $reason === 'Overdue on Payment';
    $words = ['suspend', $params['configoption1'], $params['username'],
        '--hold', $billing ? 'billing' : 'manual',
        '--idempotency-key', suspensionagent_key($params, 'suspend', substr(sha1($reason), 0, 8))];
    if ($reason !== '') {
        array_push($words, '--reason', substr($reason, 0, 200));
    }
    if ((string) $params['configoption2'] !== '') {
        array_push($words, '--playbook', $params['configoption2']);
    }
    return suspensionagent_run($params, 'SuspendAccount', $words);
}

function suspensionagent_UnsuspendAccount(array $params)
{
    // Declarative: nothing of this service is overdue any more. Another hold (abuse,
    // manual) or a remaining invoice keeps it suspended and is returned as the reason.
    $words = ['reconcile', $params['configoption1'], $params['username'], '--overdue', 'none',
        '--idempotency-key', suspensionagent_key($params, 'unsuspend')];
    return suspensionagent_run($params, 'UnsuspendAccount', $words);
}

function suspensionagent_TerminateAccount(array $params)
{
    return 'termination is disabled: suspension-agent has no termination step; the case '
        . 'stays as it is (lift it or remove the account on the server by hand)';
}

function suspensionagent_TestConnection(array $params)
{
    $words = ['check', $params['configoption1']];
    list($status, $reply, $raw) = suspensionagent_call($params, $words);
    suspensionagent_log('TestConnection', $words, $raw, $reply, $params);
    if ($status === 0 && is_array($reply) && ($reply['ok'] ?? false) === true) {
        return ['success' => true, 'error' => ''];
    }
    return ['success' => false, 'error' => suspensionagent_reason($status, $reply, $raw)];
}

function suspensionagent_AdminCustomButtonArray()
{
    return ['Case status' => 'CaseStatus', 'Export dossier' => 'ExportDossier'];
}

/**
 * The dossier of the service's latest case, written on the agent's host (its dossier_dir);
 * the module log gets the manifest with each file's SHA-256.
 */
function suspensionagent_ExportDossier(array $params)
{
    $words = ['history', $params['configoption1'], $params['username']];
    list($status, $reply, $raw) = suspensionagent_call($params, $words);
    suspensionagent_log('ExportDossier', $words, $raw, $reply, $params);
    if ($status !== 0 || !is_array($reply)) {
        return suspensionagent_reason($status, $reply, $raw);
    }
    $case = null;
    foreach ($reply['events'] ?? [] as $event) {
        if (($event['event'] ?? '') === 'case.opened' && !empty($event['case_id'])) {
            $case = $event['case_id'];
        }
    }
    if ($case === null) {
        return 'no case of this service in the agent\'s journal';
    }
    return suspensionagent_run($params, 'ExportDossier', ['case', 'export', $case]);
}

function suspensionagent_CaseStatus(array $params)
{
    $words = ['status', $params['configoption1'], $params['username']];
    return suspensionagent_run($params, 'CaseStatus', $words);
}

/**
 * For the InvoicePaid hook (through localAPI ModuleCustom): the service's billing hold
 * reconciled, nothing of it overdue; covers services WHMCS itself does not unsuspend.
 */
function suspensionagent_Reconcile(array $params)
{
    $words = ['reconcile', $params['configoption1'], $params['username'], '--overdue', 'none',
        '--idempotency-key', suspensionagent_key($params, 'paid')];
    return suspensionagent_run($params, 'Reconcile', $words);
}
