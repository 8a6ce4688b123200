<?php
/**
 * WHMCS hooks for suspension-agent: a paid invoice reconciles each of its services (WHMCS
 * does not unsuspend every kind of service by itself), and the daily cron asks the agent
 * for each service's case, so that drift shows in the module log.
 */

if (!defined('WHMCS') && !defined('SUSPENSIONAGENT_HARNESS')) {
    die('This file cannot be accessed directly');
}

add_hook('InvoicePaid', 1, function ($vars) {
    $invoice = localAPI('GetInvoice', ['invoiceid' => (int) $vars['invoiceid']]);
    foreach ($invoice['items']['item'] ?? [] as $item) {
        if (($item['type'] ?? '') === 'Hosting' && (int) ($item['relid'] ?? 0) > 0) {
            localAPI('ModuleCustom', ['serviceid' => (int) $item['relid'],
                'func_name' => 'Reconcile']);
        }
    }
});

add_hook('DailyCronJob', 1, function ($vars) {
    $services = localAPI('GetClientsProducts', ['limitnum' => 100000]);
    foreach ($services['products']['product'] ?? [] as $service) {
        if (($service['module'] ?? '') === 'suspensionagent') {
            localAPI('ModuleCustom', ['serviceid' => (int) $service['id'],
                'func_name' => 'CaseStatus']);
        }
    }
});
