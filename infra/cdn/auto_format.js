// imgdrop auto-format: a CloudFront Function (cloudfront-js-2.0), viewer-request and viewer-response.
// The single source of truth: template.yaml inlines this exact text (infra/cdn/sync_template.py), and
// the local CDN runs it with node (infra/cdn/serve.mjs). No require, no modules, ES5 syntax.
//
// viewer-request: /{dir}/{variant}.auto.{formats joined by '-', fallback last}, e.g.
// /public/t1/img_x/ab12/medium.auto.avif-webp-jpg, becomes /{dir}/{variant}.{ext} of the best listed
// format that Accept names explicitly with q>0 (avif, then webp), else the fallback; wildcards alone
// get the fallback. x-imgdrop-format (avif|webp|fallback) is set for the cache key and the response.
// A malformed list answers 400. Other URIs pass unchanged (any x-imgdrop-format sent is dropped).
// viewer-response: answers to auto requests get `Vary: Accept`.

var AUTO = /^\/(.+)\/([^\/]+)\.auto\.([A-Za-z0-9-]+)$/;
var EXT = { avif: 'avif', webp: 'webp', jpg: 'jpg', jpeg: 'jpg', png: 'png', gif: 'gif' };
var FALLBACKS = { jpg: true, png: true, gif: true };
var MARK = 'x-imgdrop-format';

function headerValues(headers, name) {
    var h = headers && headers[name];
    if (!h) {
        return [];
    }
    var multi = h.multiValue || h.multivalue;
    if (multi && multi.length) {
        var out = [];
        for (var i = 0; i < multi.length; i++) {
            out.push(String(multi[i].value));
        }
        return out;
    }
    return [String(h.value)];
}

// The q of the media range `type` when Accept names it exactly (wildcards never count), else 0.
function acceptQ(accept, type) {
    var best = 0;
    var ranges = accept.toLowerCase().split(',');
    for (var i = 0; i < ranges.length; i++) {
        var parts = ranges[i].split(';');
        if (parts[0].trim() !== type) {
            continue;
        }
        var q = 1;
        for (var j = 1; j < parts.length; j++) {
            var kv = parts[j].split('=');
            if (kv[0].trim() === 'q') {
                var v = (kv[1] || '').trim();
                q = /^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(v) ? parseFloat(v) : 0;
            }
        }
        if (q > best) {
            best = q;
        }
    }
    return best;
}

// The listed formats as bucket extensions, fallback last; null when the list is malformed.
function parseFormats(list) {
    var names = list.split('-');
    var exts = [];
    var seen = {};
    if (names.length > 5) {
        return null;
    }
    for (var i = 0; i < names.length; i++) {
        var ext = Object.prototype.hasOwnProperty.call(EXT, names[i]) ? EXT[names[i]] : null;
        if (!ext || seen[ext]) {
            return null;
        }
        seen[ext] = true;
        exts.push(ext);
    }
    // avif or webp is a fallback only when it is the one format there is.
    if (exts.length > 1 && !FALLBACKS[exts[exts.length - 1]]) {
        return null;
    }
    return exts;
}

function badRequest(message) {
    return {
        statusCode: 400,
        statusDescription: 'Bad Request',
        headers: {
            'content-type': { value: 'text/plain; charset=utf-8' },
            'cache-control': { value: 'no-store' }
        },
        body: { encoding: 'text', data: message + '\n' }
    };
}

function viewerRequest(request) {
    var headers = request.headers || (request.headers = {});
    delete headers[MARK];
    var m = AUTO.exec(request.uri || '');
    if (!m) {
        return request;
    }
    var exts = parseFormats(m[3]);
    if (!exts) {
        return badRequest('malformed format list: ' + m[3]);
    }
    var accept = headerValues(headers, 'accept').join(',');
    var fallback = exts[exts.length - 1];
    var ext = fallback;
    var label = 'fallback';
    if (exts.indexOf('avif') >= 0 && exts.indexOf('avif') < exts.length - 1 && acceptQ(accept, 'image/avif') > 0) {
        ext = 'avif';
        label = 'avif';
    } else if (exts.indexOf('webp') >= 0 && exts.indexOf('webp') < exts.length - 1 && acceptQ(accept, 'image/webp') > 0) {
        ext = 'webp';
        label = 'webp';
    }
    request.uri = '/' + m[1] + '/' + m[2] + '.' + ext;
    headers[MARK] = { value: label };
    return request;
}

function viewerResponse(request, response) {
    request = request || {};
    var auto = AUTO.test(request.uri || '') || headerValues(request.headers, MARK).length > 0;
    if (!auto) {
        return response;
    }
    var headers = response.headers || (response.headers = {});
    var vary = headerValues(headers, 'vary').join(', ');
    if (!/(^|,)\s*(accept|\*)\s*(,|$)/i.test(vary)) {
        headers.vary = { value: vary ? vary + ', Accept' : 'Accept' };
    }
    return response;
}

function handler(event) {
    if (event.context && event.context.eventType === 'viewer-response') {
        return viewerResponse(event.request, event.response);
    }
    return viewerRequest(event.request);
}
