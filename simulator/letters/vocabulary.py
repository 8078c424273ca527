"""The words of the letters, in Russian (Art. 9: the working language) and in English.

A letter is written with the template of its message's language; any other
language gets the English template and says so. Only the template's own words
are translated: what the parties wrote (the essence of a case, the reasons for
a refusal) and their names stay as they wrote them.
"""

from dataclasses import dataclass, field

from simulator.protocol import Area, RefusalGround


@dataclass(frozen=True, slots=True)
class Words:
    language: str
    # The message types' titles, as a letter's heading.
    titles: dict[str, str]
    areas: dict[str, str]
    grounds: dict[str, str]
    months: tuple[str, ...]
    labels: dict[str, str] = field(default_factory=dict)

    def date(self, day: int, month: int, year: int) -> str:
        if self.language == "ru":
            return f"{day} {self.months[month - 1]} {year} г."
        return f"{day} {self.months[month - 1]} {year}"

    def __getitem__(self, key: str) -> str:
        return self.labels[key]


RU = Words(
    language="ru",
    titles={
        "written_request": "Запрос о предоставлении помощи",
        "written_confirmation": "Письменное подтверждение устного запроса",
        "offer": "Предложение о предоставлении помощи",
        "offer_declined": "Отказ от предложенной помощи",
        "confirmation_request": "Запрос о дополнительном подтверждении",
        "additional_confirmation": "Дополнительное подтверждение запроса",
        "acknowledgement": "Уведомление о получении запроса",
        "consultation": "Предложение об условиях предоставления помощи",
        "conditions_accepted": "Согласие с условиями предоставления помощи",
        "conditions_rejected": "Несогласие с условиями предоставления помощи",
        "acceptance": "Уведомление о принятии запроса к исполнению",
        "refusal": "Уведомление об отказе в предоставлении помощи",
        "impediment_notice": "Уведомление об обстоятельствах, препятствующих исполнению запроса",
        "information_request": "Запрос о дополнительной информации",
        "additional_information": "Дополнительная информация",
        "confidentiality_impossible": "Уведомление о невозможности соблюдения конфиденциальности",
        "confidentiality_decision": "Решение об исполнении запроса",
        "results": "Уведомление о результатах исполнения запроса",
        "withdrawal": "Отзыв запроса",
        "transfer_consent_request": "Запрос о согласии на передачу информации третьей стороне",
        "transfer_consent": "Решение о передаче информации третьей стороне",
        "results_transfer": "Передача результатов исполнения запроса",
        "oral_request": "Запись устного запроса",
    },
    areas={
        Area.PUBLIC_ORDER: "поддержание общественного порядка и обеспечение общественной "
        "безопасности",
        Area.STATE_FACILITIES_AND_SPECIAL_CARGO: "охрана важных государственных объектов, "
        "специальных грузов",
        Area.TERRORISM_AND_EXTREMISM: "борьба с терроризмом и экстремизмом",
        Area.ARMS_TRAFFICKING_CONTROL: "государственный контроль в сфере оборота оружия",
        Area.FUEL_AND_ENERGY_SAFETY: "обеспечение безопасности объектов топливно-энергетического "
        "комплекса",
        Area.SPECIAL_REGIME_FACILITIES: "охрана особо важных объектов и объектов особого режима",
        Area.PROPERTY_PROTECTION: "охрана имущества физических и юридических лиц",
        Area.FORCE_SUPPORT: "силовое обеспечение мероприятий по противодействию преступности",
        Area.SPORTS_AND_CULTURE: "развитие спортивных и культурных связей",
        Area.HEALTH_RESORT_TREATMENT: "оказание на договорной основе помощи в "
        "санаторно-курортном лечении",
    },
    grounds={
        RefusalGround.SOVEREIGNTY: "исполнение запроса может нанести ущерб суверенитету",
        RefusalGround.SECURITY: "исполнение запроса может нанести ущерб безопасности",
        RefusalGround.PUBLIC_ORDER: "исполнение запроса может нанести ущерб общественному порядку",
        RefusalGround.ESSENTIAL_INTERESTS: "исполнение запроса может нанести ущерб иным "
        "существенным интересам государства",
        RefusalGround.CONTRADICTS_NATIONAL_LAW: "исполнение запроса противоречит "
        "законодательству государства",
        RefusalGround.CONTRADICTS_INTERNATIONAL_OBLIGATIONS: "исполнение запроса противоречит "
        "международным обязательствам государства",
    },
    months=(
        "января",
        "февраля",
        "марта",
        "апреля",
        "мая",
        "июня",
        "июля",
        "августа",
        "сентября",
        "октября",
        "ноября",
        "декабря",
    ),
    labels={
        "number": "№",
        "in_reply": "На №",
        "in_reply_oral": "На Ваш устный запрос от",
        "of": "от",
        "to": "Кому",
        "names": "1. Наименование запрашивающей и запрашиваемой Сторон",
        "requesting": "Запрашивающая Сторона",
        "requested": "Запрашиваемая Сторона",
        "essence": "2. Изложение существа дела",
        "purpose": "3. Цель и обоснование запроса",
        "purpose_only": "Цель",
        "justification": "Обоснование",
        "assistance": "4. Описание содержания запрашиваемой помощи",
        "parts": "Части запрашиваемой помощи",
        "other": "5. Иная информация, полезная для надлежащего исполнения запроса",
        "area": "Область сотрудничества (статья 2 Соглашения)",
        "urgent": "Срочно (статья 4, пункт 2 Соглашения).",
        "confidential": "Просим обеспечить конфиденциальность факта получения запроса, его "
        "содержания и факта оказания помощи (статья 6, пункт 3 Соглашения).",
        "confirms": "Подтверждаем в письменной форме устный запрос",
        "not_given": "не указано",
        "description": "Содержание предлагаемой помощи",
        "reason": "Причина",
        "doubt": "Возникшие сомнения",
        "statement": "Подтверждение",
        "note": "Примечание",
        "conditions": "Условия, которые запрашиваемая Сторона считает необходимыми "
        "(статья 5, пункт 2 Соглашения)",
        "accepted": "Запрашивающая Сторона принимает предложенные условия и будет их "
        "соблюдать (статья 5, пункт 2 Соглашения).",
        "rejected": "Запрашивающая Сторона не принимает предложенные условия.",
        "acceptance": "Запрос принят к исполнению.",
        "scope": "Объем отказа",
        "full": "в предоставлении помощи отказано полностью",
        "partial": "в предоставлении помощи отказано частично",
        "refused_parts": "Части, в исполнении которых отказано",
        "reasons": "Причины отказа (статья 5, пункт 3 Соглашения)",
        "grounds": "Основания отказа (статья 5, пункт 1 Соглашения)",
        "no_grounds": "основания не указаны",
        "outside": "вне перечня статьи 5, пункт 1",
        "circumstances": "Обстоятельства, препятствующие исполнению запроса или существенно "
        "задерживающие его (статья 6, пункт 1 Соглашения)",
        "occurred": "Обстоятельства возникли",
        "delay": "Ожидаемая задержка",
        "questions": "Запрашиваемая дополнительная информация (статья 6, пункт 2 Соглашения)",
        "answers": "Ответ на запрос о дополнительной информации",
        "explanation": "Исполнение запроса без раскрытия его содержания невозможно "
        "(статья 6, пункт 3 Соглашения)",
        "proceed": "Запрашивающая Сторона просит исполнить запрос на указанных условиях "
        "(статья 6, пункт 3 Соглашения).",
        "withdraw": "Запрашивающая Сторона отзывает запрос (статья 6, пункт 3 Соглашения).",
        "summary": "Результаты исполнения запроса (статья 6, пункт 4 Соглашения)",
        "partial_results": "Результаты являются частичными: в исполнении части запроса отказано.",
        "withdrawal": "Запрашивающая Сторона отзывает свой запрос.",
        "third_party": "Третья сторона",
        "transfer_purpose": "Цель передачи (статья 7, пункт 3 Соглашения)",
        "granted": "Согласие на передачу информации третьей стороне дано (статья 7, пункт 3 "
        "Соглашения).",
        "refused_transfer": "В согласии на передачу информации третьей стороне отказано.",
        "transferred": "Передаваемые результаты (с предварительного согласия, статья 7, "
        "пункт 3 Соглашения)",
        "head": "руководитель",
        "deputy": "заместитель руководителя",
        "seal": "М.П.",
        "signature_verified": "Электронная подпись проверена: подлинная, текст после "
        "подписания не изменялся.",
        "signature_invalid": "Электронная подпись НЕ ПРОШЛА проверку: документ подделан или "
        "изменен после подписания.",
        "signature_paper": "Подпись на бумаге: электронной подписи нет, проверка не проводилась.",
        "signature_unchecked": "Электронная подпись не проверена: нет ключа подписавшего.",
        "signature_missing": "Документ не подписан.",
        "signature_not_required": "Электронная подпись к этому сообщению не прилагается: "
        "Соглашение требует ее только для запросов (статья 4, пункт 4).",
        "signer_not_entitled": "Подписавший не является ни руководителем, ни заместителем "
        "руководителя запрашивающей Стороны (статья 4, пункт 4 Соглашения).",
        "no_seal": "Печать отсутствует.",
        "training": "Учебный документ. Участники, лица и события вымышлены.",
        "exercise": "Учение",
        "position": "позиция в журнале",
        "other_language": "",
    },
)

EN = Words(
    language="en",
    titles={
        "written_request": "Request for assistance",
        "written_confirmation": "Written confirmation of an oral request",
        "offer": "Offer of assistance",
        "offer_declined": "Offer of assistance declined",
        "confirmation_request": "Request for additional confirmation",
        "additional_confirmation": "Additional confirmation of a request",
        "acknowledgement": "Acknowledgement of receipt of a request",
        "consultation": "Proposed conditions of assistance",
        "conditions_accepted": "Conditions of assistance accepted",
        "conditions_rejected": "Conditions of assistance rejected",
        "acceptance": "Notice of acceptance of a request for execution",
        "refusal": "Notice of refusal of assistance",
        "impediment_notice": "Notice of circumstances impeding execution",
        "information_request": "Request for additional information",
        "additional_information": "Additional information",
        "confidentiality_impossible": "Notice that confidentiality cannot be kept",
        "confidentiality_decision": "Decision on the execution of a request",
        "results": "Notice of the results of execution",
        "withdrawal": "Withdrawal of a request",
        "transfer_consent_request": "Request for consent to a transfer to a third party",
        "transfer_consent": "Decision on a transfer to a third party",
        "results_transfer": "Transfer of the results of execution",
        "oral_request": "Record of an oral request",
    },
    areas={
        Area.PUBLIC_ORDER: "maintaining public order and ensuring public safety",
        Area.STATE_FACILITIES_AND_SPECIAL_CARGO: "protection of important state facilities, "
        "special cargo",
        Area.TERRORISM_AND_EXTREMISM: "fight against terrorism and extremism",
        Area.ARMS_TRAFFICKING_CONTROL: "state control in the field of arms trafficking",
        Area.FUEL_AND_ENERGY_SAFETY: "ensuring the safety of objects of the fuel and energy "
        "complex",
        Area.SPECIAL_REGIME_FACILITIES: "protection of especially important facilities and "
        "objects of a special protection regime",
        Area.PROPERTY_PROTECTION: "protection of property of individuals and legal entities",
        Area.FORCE_SUPPORT: "force support measures to counter crime",
        Area.SPORTS_AND_CULTURE: "development of sports and cultural ties",
        Area.HEALTH_RESORT_TREATMENT: "assistance on a contractual basis in health-resort "
        "treatment",
    },
    grounds={
        RefusalGround.SOVEREIGNTY: "execution could harm the sovereignty of the state",
        RefusalGround.SECURITY: "execution could harm the security of the state",
        RefusalGround.PUBLIC_ORDER: "execution could harm public order",
        RefusalGround.ESSENTIAL_INTERESTS: "execution could harm other essential interests of "
        "the state",
        RefusalGround.CONTRADICTS_NATIONAL_LAW: "execution contradicts the law of the state",
        RefusalGround.CONTRADICTS_INTERNATIONAL_OBLIGATIONS: "execution contradicts the "
        "international obligations of the state",
    },
    months=(
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
    labels={
        "number": "No.",
        "in_reply": "Ref. your No.",
        "in_reply_oral": "Ref. your oral request of",
        "of": "of",
        "to": "To",
        "names": "1. Names of the requesting and the requested Party",
        "requesting": "Requesting Party",
        "requested": "Requested Party",
        "essence": "2. Statement of the essence of the case",
        "purpose": "3. Purpose and justification of the request",
        "purpose_only": "Purpose",
        "justification": "Justification",
        "assistance": "4. Description of the assistance requested",
        "parts": "Parts of the assistance requested",
        "other": "5. Other information useful for the proper execution of the request",
        "area": "Area of cooperation (Article 2 of the Agreement)",
        "urgent": "Urgent (Article 4, paragraph 2 of the Agreement).",
        "confidential": "We ask that the receipt of this request, its content and the "
        "assistance given be kept confidential (Article 6, paragraph 3 of the Agreement).",
        "confirms": "We confirm in writing the oral request",
        "not_given": "not given",
        "description": "The assistance offered",
        "reason": "Reason",
        "doubt": "The doubt that has arisen",
        "statement": "Confirmation",
        "note": "Note",
        "conditions": "Conditions the requested Party considers necessary (Article 5, "
        "paragraph 2 of the Agreement)",
        "accepted": "The requesting Party accepts the proposed conditions and will comply with "
        "them (Article 5, paragraph 2 of the Agreement).",
        "rejected": "The requesting Party does not accept the proposed conditions.",
        "acceptance": "The request has been accepted for execution.",
        "scope": "Extent of the refusal",
        "full": "assistance is refused in full",
        "partial": "assistance is refused in part",
        "refused_parts": "Parts refused",
        "reasons": "Reasons for the refusal (Article 5, paragraph 3 of the Agreement)",
        "grounds": "Grounds for the refusal (Article 5, paragraph 1 of the Agreement)",
        "no_grounds": "no grounds given",
        "outside": "outside the list of Article 5, paragraph 1",
        "circumstances": "Circumstances impeding or significantly delaying execution (Article "
        "6, paragraph 1 of the Agreement)",
        "occurred": "The circumstances arose",
        "delay": "Expected delay",
        "questions": "Additional information requested (Article 6, paragraph 2 of the Agreement)",
        "answers": "Answer to the request for additional information",
        "explanation": "The request cannot be executed without disclosing it (Article 6, "
        "paragraph 3 of the Agreement)",
        "proceed": "The requesting Party asks that the request be executed under these "
        "conditions (Article 6, paragraph 3 of the Agreement).",
        "withdraw": "The requesting Party withdraws the request (Article 6, paragraph 3 of the "
        "Agreement).",
        "summary": "Results of the execution of the request (Article 6, paragraph 4 of the "
        "Agreement)",
        "partial_results": "The results are partial: execution of part of the request was refused.",
        "withdrawal": "The requesting Party withdraws its request.",
        "third_party": "Third party",
        "transfer_purpose": "Purpose of the transfer (Article 7, paragraph 3 of the Agreement)",
        "granted": "Consent to the transfer to the third party is given (Article 7, paragraph "
        "3 of the Agreement).",
        "refused_transfer": "Consent to the transfer to the third party is refused.",
        "transferred": "Results transferred (with prior consent, Article 7, paragraph 3 of the "
        "Agreement)",
        "head": "head",
        "deputy": "deputy head",
        "seal": "Seal",
        "signature_verified": "Electronic signature verified: genuine, and the text was not "
        "changed after signing.",
        "signature_invalid": "Electronic signature does NOT verify: the document was forged or "
        "changed after signing.",
        "signature_paper": "Signed on paper: no electronic signature, so it was not checked.",
        "signature_unchecked": "Electronic signature not checked: no key of the signatory.",
        "signature_missing": "The document is not signed.",
        "signature_not_required": "No electronic signature comes with this message: the "
        "Agreement requires one on requests only (Article 4, paragraph 4).",
        "signer_not_entitled": "The signatory is neither the head nor a deputy head of the "
        "requesting Party (Article 4, paragraph 4 of the Agreement).",
        "no_seal": "No seal.",
        "training": "Training document. The parties, people and events are fictional.",
        "exercise": "Exercise",
        "position": "log position",
        "other_language": "Written in {language}; shown with the English template.",
    },
)

TEMPLATES = {"ru": RU, "en": EN}


def words_for(language: str) -> Words:
    """The template words for a message's language: Russian, English, else English."""
    return TEMPLATES.get(language.split("-", 1)[0], EN)
